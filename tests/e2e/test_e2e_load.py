"""200 concurrent streaming clients for 60 s through the router (the original project's "200
users"): no errors, bounded router memory, and the time to first token the router adds.

Run twice: against the two real llama-servers, and against fake engines (fixed 50 ms first token,
10 ms per token) where the 2-core machine's engines are not the bottleneck. Each time the same
load also goes straight to the engines, without the router, for the baseline.
E2E_LOAD_SECONDS shortens the measured phase for a quick local run (CI uses 60).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stack

from adaptive_router.testing.processes import Process, free_port, running

CLIENTS = 200
SECONDS = float(os.environ.get("E2E_LOAD_SECONDS", "60"))
BASELINE_SECONDS = min(20.0, SECONDS)
LOAD_TEST = stack.ROOT / "benchmarks" / "load_test.py"
# The random-weight model may emit its end token first; llama-server's ignore_eos keeps every
# answer at max_tokens (the fake engine ignores the field).
EXTRA_BODY = json.dumps({"ignore_eos": True})


def load(out: Path, base_url: str, *, seconds: float, **options: Any) -> dict[str, Any]:
    argv = [
        sys.executable, str(LOAD_TEST), "--base-url", base_url, "--clients", str(CLIENTS),
        "--duration", str(seconds), "--out", str(out),
    ]  # fmt: skip
    for key, value in options.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 240)
    assert done.returncode == 0, done.stderr[-3000:]
    summary: dict[str, Any] = json.loads(out.read_text())
    return summary


def fake_engine(name: str, model: str, logs: Path) -> stack.Endpoint:
    port = free_port()
    argv = [
        sys.executable, "-m", "adaptive_router.testing.fake_engine", "--port", str(port),
        "--model", model, "--first-token-delay-ms", "50", "--token-delay-ms", "10",
        "--tokens", "16",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    return stack.Endpoint(Process(name, argv, logs, ready_url=url + "/health"), url)


@pytest.fixture(scope="module", params=["llama-server", "fake-engine"])
def load_stack(
    request: pytest.FixtureRequest,
    tiny_model: Path,
    tmp_path_factory: pytest.TempPathFactory,
    artifacts: Path,
) -> Iterator[tuple[str, stack.Endpoint, stack.Endpoint, stack.Endpoint]]:
    kind = request.param
    logs = artifacts / "logs"
    if kind == "llama-server":
        low = stack.llama_server("load-tier-low", tiny_model, stack.TIER_LOW_ALIAS, logs)
        high = stack.llama_server("load-tier-high", tiny_model, stack.TIER_HIGH_ALIAS, logs)
    else:
        low = fake_engine("load-fake-low", stack.TIER_LOW_ALIAS, logs)
        high = fake_engine("load-fake-high", stack.TIER_HIGH_ALIAS, logs)
    router = stack.router(
        tmp_path_factory.mktemp(f"load-{kind}"), low.url, high.url, logs, name=f"load-router-{kind}"
    )
    with running(low.process, high.process, router.process):
        yield kind, low, high, router


def test_200_streaming_clients_for_60_s(
    load_stack: tuple[str, stack.Endpoint, stack.Endpoint, stack.Endpoint], artifacts: Path
) -> None:
    kind, low, high, router = load_stack
    direct = load(
        artifacts / f"load-{kind}-direct.json", low.url, seconds=BASELINE_SECONDS,
        hard_base_url=high.url, model=stack.TIER_LOW_ALIAS, hard_model=stack.TIER_HIGH_ALIAS,
        extra_body=EXTRA_BODY,
    )  # fmt: skip
    routed = load(
        artifacts / f"load-{kind}-router.json", router.url, seconds=SECONDS,
        api_key=stack.ROUTER_API_KEY, watch_pid=router.process.pid, extra_body=EXTRA_BODY,
    )  # fmt: skip
    report = {
        "engines": kind,
        "clients": CLIENTS,
        "router_seconds": SECONDS,
        "requests_via_router": routed["requests"],
        "errors_via_router": routed["errors"],
        "error_kinds": routed["error_kinds"],
        "served_by": routed["served_by"],
        "router_rss_start_mb": routed["rss_start_mb"],
        "router_rss_growth_mb": routed["rss_growth_mb"],
        "ttft_direct_p50_ms": direct["ttft_p50_ms"],
        "ttft_direct_p99_ms": direct["ttft_p99_ms"],
        "ttft_router_p50_ms": routed["ttft_p50_ms"],
        "ttft_router_p99_ms": routed["ttft_p99_ms"],
        "added_ttft_p50_ms": round(routed["ttft_p50_ms"] - direct["ttft_p50_ms"], 2),
        "added_ttft_p99_ms": round(routed["ttft_p99_ms"] - direct["ttft_p99_ms"], 2),
        "requests_per_s_direct": direct["requests_per_s"],
        "requests_per_s_router": routed["requests_per_s"],
    }
    (artifacts / f"load-{kind}.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    assert direct["errors"] == 0, direct["error_kinds"]
    assert routed["errors"] == 0, routed["error_kinds"]
    assert routed["requests"] >= CLIENTS, "every client completed requests"
    assert set(routed["served_by"]) == {"tier_low", "tier_high"}
    assert routed["rss_growth_mb"] < 50
