"""Failures before the first byte: failover as the decision allows, circuits, health probes,
load polling, saturation."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from adaptive_router import AdaptiveRouter, RoutingConfig
from adaptive_router.service import ServiceConfig, create_app
from adaptive_router.service.circuit import CircuitBreaker, CircuitState
from adaptive_router.service.probes import poll_load, probe_health
from adaptive_router.service.tiers import Replica, TierRuntime
from adaptive_router.service.upstream import UpstreamPool
from adaptive_router.testing.fake_engine import Behavior

from ..servers import closed_port_url, serve
from .conftest import EASY, HARD, RouterHandle, chat


def test_dead_tier_fails_over_and_opens_its_circuit(
    make_router: Callable[..., RouterHandle],
) -> None:
    router = make_router(tier_high_url=closed_port_url())
    for _ in range(3):
        r = router.client.post("/v1/chat/completions", json=chat(HARD))
        assert r.status_code == 200
        assert r.headers["x-router-tier"] == "tier_low"
        assert r.headers["x-router-reason"] == "failover"
        assert r.headers["x-router-degraded"] == "true"
        assert r.headers["x-router-policy-tier"] == "tier_high"
    assert router.replica("tier_high").circuit.state is CircuitState.OPEN
    # With the circuit open the decision itself moves away from tier_high.
    r = router.client.post("/v1/chat/completions", json=chat(HARD))
    assert (r.headers["x-router-tier"], r.headers["x-router-reason"]) == ("tier_low", "health")
    assert r.headers["x-router-degraded"] == "true"
    assert router.metric("router_failovers_total", from_tier="tier_high", to_tier="tier_low") == 3.0
    assert router.metric("router_upstream_errors_total", kind="connect", tier="tier_high") == 3.0
    assert router.metric("router_circuit_state", tier="tier_high") == 2.0
    health = router.client.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "degraded"
    assert health.json()["tiers"]["tier_high"]["circuit"] == "open"
    assert "ConnectError" in health.json()["tiers"]["tier_high"]["last_error"]


def test_circuit_half_open_probe_closes_it(
    make_router: Callable[..., RouterHandle], fresh: dict[str, Any]
) -> None:
    router = make_router()
    now = [1000.0]
    tier = router.replica("tier_high")
    tier.circuit = CircuitBreaker(failure_threshold=1, cooldown_s=5.0, clock=lambda: now[0])
    fresh["high"].behavior = Behavior(fault="500")
    r = router.client.post("/v1/chat/completions", json=chat(HARD))
    assert (r.status_code, r.headers["x-router-tier"]) == (200, "tier_low")
    assert tier.circuit.state is CircuitState.OPEN
    fresh["high"].behavior = Behavior()  # the engine is fixed
    assert (
        router.client.post("/v1/chat/completions", json=chat(HARD)).headers["x-router-tier"]
        == "tier_low"
    )
    now[0] += 5.0  # cooldown over: one probe request is let through
    assert tier.circuit.state is CircuitState.HALF_OPEN
    r = router.client.post("/v1/chat/completions", json=chat(HARD))
    assert r.headers["x-router-tier"] == "tier_high"
    assert tier.circuit.state is CircuitState.CLOSED


@pytest.mark.parametrize("fault", ["loading", "500", "empty"])
def test_failure_before_first_byte_costs_no_client_error(
    router: RouterHandle, fresh: dict[str, Any], fault: str
) -> None:
    fresh["high"].behavior = Behavior(fault=fault)  # type: ignore[arg-type]
    r = router.client.post("/v1/chat/completions", json=chat(HARD, stream=True))
    assert r.status_code == 200
    assert r.headers["x-router-tier"] == "tier_low"
    assert r.text.rstrip().endswith("data: [DONE]")
    kind = {"loading": "loading", "500": "status_5xx", "empty": "protocol"}[fault]
    assert router.metric("router_upstream_errors_total", kind=kind, tier="tier_high") == 1.0


def test_smart_does_not_fall_back_unless_allowed(make_router: Callable[..., RouterHandle]) -> None:
    strict = make_router(tier_high_url=closed_port_url())
    r = strict.client.post("/v1/chat/completions", json=chat(model="gemma4-smart"))
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "upstream_unavailable"
    assert "allow_degraded" in r.json()["error"]["message"]
    lenient = make_router(
        RoutingConfig(gpu_monitor=False, allow_degraded=True), tier_high_url=closed_port_url()
    )
    r = lenient.client.post("/v1/chat/completions", json=chat(model="gemma4-smart"))
    assert (r.status_code, r.headers["x-router-tier"], r.headers["x-router-degraded"]) == (
        200,
        "tier_low",
        "true",
    )


def test_a_prompt_that_only_fits_tier_high_does_not_fail_over(
    make_router: Callable[..., RouterHandle],
) -> None:
    router = make_router(tier_high_url=closed_port_url())
    long_prompt = "Summarise this: " + "word " * 8000  # ~11 k tokens: over tier_low's 8192
    r = router.client.post("/v1/chat/completions", json=chat(long_prompt))
    assert r.status_code == 503
    assert "context window" in r.json()["error"]["message"]


def test_both_tiers_down(make_router: Callable[..., RouterHandle]) -> None:
    router = make_router(tier_low_url=closed_port_url(), tier_high_url=closed_port_url())
    r = router.client.post("/v1/chat/completions", json=chat())
    assert r.status_code == 503
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    for _ in range(3):
        router.client.post("/v1/chat/completions", json=chat())
    assert router.client.get("/health").status_code == 503


def _tier(url: str, name: str = "tier_high", max_waiting: int = 4) -> TierRuntime:
    pool = UpstreamPool(url, max_connections=4, connect_timeout_s=1.0)
    replica = Replica(url=url, pool=pool, circuit=CircuitBreaker(3, 5.0))
    return TierRuntime(
        name=name,  # type: ignore[arg-type]
        served_model="m",
        replicas=[replica],
        max_waiting=max_waiting,
    )


def test_health_probe_reads_loading_and_recovery(fresh: dict[str, Any]) -> None:
    async def scenario() -> list[tuple[str, CircuitState]]:
        tier = _tier(fresh["high_url"])
        seen = []
        fresh["high"].behavior = Behavior(health_status=503)
        seen.append((await probe_health(tier, tier.replica, 1.0), tier.replica.circuit.state))
        fresh["high"].behavior = Behavior()
        seen.append((await probe_health(tier, tier.replica, 1.0), tier.replica.circuit.state))
        dead = _tier(closed_port_url())
        seen.append((await probe_health(dead, dead.replica, 1.0), dead.replica.circuit.state))
        await tier.replica.pool.aclose()
        await dead.replica.pool.aclose()
        return seen

    assert asyncio.run(scenario()) == [
        ("loading", CircuitState.OPEN),
        ("up", CircuitState.CLOSED),
        ("down", CircuitState.OPEN),
    ]


def test_load_poll_reads_both_engines_metrics(fresh: dict[str, Any]) -> None:
    async def scenario() -> tuple[TierRuntime, TierRuntime]:
        high = _tier(fresh["high_url"])
        low = _tier(fresh["low_url"], name="tier_low", max_waiting=16)
        await poll_load(high, high.replica, 1.0)
        await poll_load(low, low.replica, 1.0)
        await high.replica.pool.aclose()
        await low.replica.pool.aclose()
        return high, low

    fresh["high"].behavior = Behavior(deferred=10)
    fresh["low"].behavior = Behavior(waiting=3)
    high, low = asyncio.run(scenario())
    assert high.replica.load == {
        "llamacpp:requests_processing": 0.0,
        "llamacpp:requests_deferred": 10.0,
    }
    assert high.saturated
    assert low.replica.load["vllm:num_requests_waiting"] == 3.0
    assert low.replica.load["vllm:kv_cache_usage_perc"] == 0.25
    assert not low.saturated


def test_saturated_tier_sends_work_to_the_other(router: RouterHandle) -> None:
    router.replica("tier_high").load = {"llamacpp:requests_deferred": 10.0}
    r = router.client.post("/v1/chat/completions", json=chat(HARD))
    assert (r.headers["x-router-tier"], r.headers["x-router-reason"]) == ("tier_low", "load")
    assert router.metric("router_tier_saturated", tier="tier_high") == 1.0
    assert router.metric("router_tier_queue_depth", tier="tier_high") == 10.0


def test_background_probes_mark_a_dead_tier_down(fresh: dict[str, Any]) -> None:
    app = create_app(
        ServiceConfig(tier_low_url=fresh["low_url"], tier_high_url=closed_port_url(),
                      health_interval_s=0.05, load_poll_interval_s=0.05),
        router=AdaptiveRouter(RoutingConfig(gpu_monitor=False)),
    )  # fmt: skip
    with serve(app) as url, httpx.Client(base_url=url) as client:
        deadline = time.monotonic() + 5.0
        while app.state.tiers["tier_high"].replica.health != "down" and time.monotonic() < deadline:
            threading.Event().wait(0.02)
        health = client.get("/health").json()
        assert health["tiers"]["tier_high"]["health"] == "down"
        assert health["tiers"]["tier_low"]["health"] == "up"
        r = client.post("/v1/chat/completions", json=chat(HARD))
        assert (r.headers["x-router-tier"], r.headers["x-router-reason"]) == ("tier_low", "health")


IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}


def with_image(text: str, model: str = "gemma4-fast") -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": [IMAGE, {"type": "text", "text": text}]}],
    }


def test_an_image_is_never_retried_on_a_tier_that_takes_none(
    router: RouterHandle, fresh: dict[str, Any]
) -> None:
    fresh["low"].behavior = Behavior(
        fault="500"
    )  # the only vision tier fails before its first byte
    r = router.client.post("/v1/chat/completions", json=with_image(HARD))
    assert r.status_code == 503
    error = r.json()["error"]
    assert error["code"] == "upstream_unavailable"
    assert "tier_high does not accept them (vision_tiers)" in error["message"]
    assert fresh["high"].stats.requests == []  # the decision's policy: no fallback for images


def test_an_image_for_a_named_text_only_tier_is_a_clear_400(
    router: RouterHandle, fresh: dict[str, Any]
) -> None:
    r = router.client.post("/v1/chat/completions", json=with_image(EASY, model="gemma4-smart"))
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "vision_not_supported"
    assert "tier_high (the model named in the request) does not accept them" in error["message"]
    assert fresh["low"].stats.requests == fresh["high"].stats.requests == []


def test_llama_server_without_mmproj_is_the_request_s_problem_not_the_tier_s(
    make_router: Callable[..., RouterHandle], fresh: dict[str, Any]
) -> None:
    router = make_router(RoutingConfig(gpu_monitor=False, vision_tiers=("tier_low", "tier_high")))
    fresh["high"].behavior = Behavior(accepts_images=False)  # llama-server started without --mmproj
    for _ in range(4):  # more than the circuit's failure threshold
        r = router.client.post("/v1/chat/completions", json=with_image(EASY, model="gemma4-smart"))
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "vision_not_supported"
        assert "no --mmproj" in r.json()["error"]["message"]
        assert r.headers["x-router-tier"] == "tier_high"
    assert router.replica("tier_high").circuit.state is CircuitState.CLOSED
    assert router.replica("tier_high").circuit.failures == 0
    assert not router.metric("router_upstream_errors_total", tier="tier_high")
    assert (
        router.client.post("/v1/chat/completions", json=chat(HARD)).headers["x-router-tier"]
        == "tier_high"
    )
