"""The SLA rule measures time to first token and lets tier_high back in on its own."""

from __future__ import annotations

import time
from typing import Any

import httpx

from adaptive_router import AdaptiveRouter, RoutingConfig
from adaptive_router.service import ServiceConfig, create_app
from adaptive_router.testing.fake_engine import Behavior

from ..servers import serve
from .conftest import HARD, RouterHandle, chat

SLA_MS = 150.0


def routed_tier(client: httpx.Client, **extra: Any) -> str:
    r = client.post("/v1/chat/completions", json=chat(HARD, **extra))
    assert r.status_code == 200
    return r.headers["x-router-tier"] + "/" + r.headers["x-router-reason"]


def test_slow_tier_high_is_avoided_then_let_back_in_without_any_smart_request(
    fresh: dict[str, Any],
) -> None:
    app = create_app(
        ServiceConfig(tier_low_url=fresh["low_url"], tier_high_url=fresh["high_url"],
                      sla_probe_interval_s=0.05),
        router=AdaptiveRouter(RoutingConfig(gpu_monitor=False, latency_sla_ms=SLA_MS,
                                            sla_warmup_seed_ms=50.0)),
        probes=False,  # no health or load polls: only the SLA probe runs
    )  # fmt: skip
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        handle = RouterHandle(url, app)
        fresh["high"].behavior = Behavior(first_token_delay_s=0.4)  # ~3x the SLA
        # Streamed answers measure the time to first token; two slow ones push the average up.
        assert routed_tier(client, stream=True) == "tier_high/complexity"
        assert routed_tier(client, stream=True) == "tier_high/complexity"
        assert routed_tier(client) == "tier_low/sla"
        high_requests = len(fresh["high"].stats.requests)

        fresh["high"].behavior = Behavior()  # healthy and fast again
        started = time.monotonic()
        while routed_tier(client) != "tier_high/complexity":
            assert time.monotonic() - started < 60, "tier_high was not let back in"
            time.sleep(0.05)
        # It came back through the probes' one-token requests alone: no gemma4-smart request was
        # sent, and every request tier_high got meanwhile was a probe.
        probes = fresh["high"].stats.requests[high_requests:-1]
        assert probes and all(r["max_tokens"] == 1 and r["stream"] for r in probes)
        assert all(r["model"] == "gemma-4-26b-a4b" for r in probes)
        assert (handle.metric("router_sla_probes_total", tier="tier_high", outcome="ok") or 0) >= 1
        assert handle.metric("router_requests_total", model="gemma4-smart") is None
        handle.client.close()


def test_a_non_streamed_answer_does_not_count_its_generation_as_latency(
    make_router: Any, fresh: dict[str, Any]
) -> None:
    router: RouterHandle = make_router(
        RoutingConfig(gpu_monitor=False, latency_sla_ms=SLA_MS, sla_warmup_seed_ms=50.0)
    )
    # A non-streamed answer that takes 0.5 s (its whole generation) is not a slow first token.
    fresh["high"].behavior = Behavior(first_token_delay_s=0.5)
    for _ in range(3):
        router.client.post("/v1/chat/completions", json=chat(HARD))
    ema = router.metric("router_latency_ema_seconds", tier="tier_high")
    assert ema is not None and ema * 1000 < SLA_MS
    assert (
        router.client.post("/v1/chat/completions", json=chat(HARD)).headers["x-router-tier"]
        == "tier_high"
    )
    assert not router.metric("router_ttft_seconds_count", tier="tier_high")


def test_one_stuck_answer_counts_at_most_four_times_the_sla() -> None:
    with AdaptiveRouter(RoutingConfig(gpu_monitor=False, latency_sla_ms=1000.0)) as router:
        router.observe("tier_high", 600_000.0)  # a ten-minute first token
        assert router.ema.value("tier_high") <= 0.2 * 4000 + 0.8 * 800
