"""The SLA rule on the running router, with the stack's own settings (docker/router/
router_config.yaml: 2 s time-to-first-token target, probes every 5 s while tier_high is
avoided): a slow tier_high loses routed hard prompts, and gets them back on its own once it is
fast again, with no gemma4-smart request in between. tier_low is the real CPU llama-server;
tier_high is the package's fake engine, whose first-token delay the test turns up and down.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import stack
from e2eutil import HARD_PROMPT, metric_sum, router_headers, scrape

from adaptive_router.testing.processes import Process, free_port, running, wait_until


def ask(client: httpx.Client, *, stream: bool) -> str:
    body = {"model": "gemma4-fast", "messages": [{"role": "user", "content": HARD_PROMPT}],
            "max_tokens": 4, "stream": stream}  # fmt: skip
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        r.read()
        assert r.status_code == 200, r.text
        return r.headers["x-router-tier"] + "/" + r.headers["x-router-reason"]


@pytest.fixture(scope="module")
def sla_stack(
    engines: tuple[stack.Endpoint, stack.Endpoint],
    tmp_path_factory: pytest.TempPathFactory,
    artifacts: Path,
) -> Iterator[tuple[stack.Endpoint, str]]:
    port = free_port()
    fake = Process(
        "sla-tier-high",
        [sys.executable, "-m", "adaptive_router.testing.fake_engine", "--port", str(port),
         "--model", stack.TIER_HIGH_ALIAS, "--tokens", "4"],
        artifacts / "logs", ready_url=f"http://127.0.0.1:{port}/health",
    )  # fmt: skip
    high = f"http://127.0.0.1:{port}"
    router = stack.router(
        tmp_path_factory.mktemp("sla"), engines[0].url, high, artifacts / "logs", name="sla-router"
    )
    with running(fake, router.process):
        yield router, high


def test_slow_tier_high_loses_hard_prompts_and_wins_them_back_alone(
    sla_stack: tuple[stack.Endpoint, str], artifacts: Path
) -> None:
    router, high = sla_stack
    with httpx.Client(base_url=router.url, headers=router_headers(), timeout=60) as client:
        assert ask(client, stream=False) == "tier_high/complexity"
        # tier_high takes 6 s to its first token (3x the 2 s SLA): three streamed answers.
        httpx.post(high + "/fake/behavior", json={"first_token_delay_s": 6.0}).raise_for_status()
        with ThreadPoolExecutor(3) as pool:
            assert set(pool.map(lambda _: ask(client, stream=True), range(3))) == {
                "tier_high/complexity"
            }
        assert ask(client, stream=False) == "tier_low/sla"
        ema_slow = metric_sum(scrape(router.url), "router_latency_ema_seconds", tier="tier_high")

        httpx.post(high + "/fake/behavior", json={"first_token_delay_s": 0.0}).raise_for_status()
        healed = time.monotonic()
        wait_until(
            lambda: ask(client, stream=False) == "tier_high/complexity",
            60,
            "hard prompts to reach tier_high again (SLA probes)",
            interval=0.5,
        )
        recovery_s = time.monotonic() - healed
    samples = scrape(router.url)
    assert metric_sum(samples, "router_requests_total", model="gemma4-smart") == 0
    probes = metric_sum(samples, "router_sla_probes_total", tier="tier_high", outcome="ok")
    assert probes >= 1
    figures = {
        "latency_sla_s": metric_sum(samples, "router_latency_sla_seconds"),
        "tier_high_ema_when_slow_s": round(ema_slow, 3),
        "recovery_s_after_tier_high_is_fast_again": round(recovery_s, 2),
        "sla_probes": probes,
    }
    (artifacts / "sla.json").write_text(json.dumps(figures, indent=2))
    assert recovery_s < 60, figures
