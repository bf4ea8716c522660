"""The command lines: the 0.1 entry point, the console script, and a real serve with drain."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from adaptive_router.testing.fake_engine import Behavior, FakeEngine
from adaptive_router.testing.processes import Process, free_port, running

from .servers import serve

PY = sys.executable


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
    )


def test_middleware_help_lists_the_01_flags() -> None:
    out = run("-m", "adaptive_router.middleware", "--help")
    assert out.returncode == 0
    flags = "--tier-low-url --tier-high-url --host --port --complexity-threshold "
    flags += "--vram-headroom-gb --latency-sla-ms --sla-warmup-seed-ms --config"
    for flag in flags.split():
        assert flag in out.stdout


def test_config_typo_stops_the_service_with_a_clear_message(tmp_path: Path) -> None:
    config = tmp_path / "router_config.yaml"
    config.write_text("complexity_treshold: 0.7\n", encoding="utf-8")
    out = run("-m", "adaptive_router.middleware", "--config", str(config))
    assert out.returncode == 2
    assert "complexity_treshold" in out.stderr and str(config) in out.stderr
    assert "Traceback" not in out.stderr
    config.write_text("service:\n  prot: 9000\n", encoding="utf-8")
    out = run("-m", "adaptive_router.middleware", "--config", str(config))
    assert out.returncode == 2 and "did you mean 'port'" in out.stderr


def test_console_script_route_and_config() -> None:
    out = run("-m", "adaptive_router.cli", "route", "Prove the Riemann hypothesis step by step")
    assert out.returncode == 0, out.stderr
    decision = json.loads(out.stdout)
    assert (decision["tier"], decision["reason"]) == ("tier_high", "complexity")
    out = run("-m", "adaptive_router.cli", "config")
    assert "complexity_threshold: 0.5" in out.stdout


def test_serve_drains_streams_in_flight_on_sigterm(tmp_path: Path) -> None:
    engine = FakeEngine("gemma-4-e4b", behavior=Behavior(tokens=10, token_delay_s=0.1))
    with serve(engine) as engine_url:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        router = Process(
            "router",
            [PY, "-m", "adaptive_router.middleware", "--tier-low-url", engine_url + "/v1",
             "--tier-high-url", engine_url + "/v1", "--host", "127.0.0.1", "--port", str(port)],
            tmp_path, ready_url=url + "/livez",
            env={"ROUTER_GPU_MONITOR": "false", "ROUTER_TIER_HIGH_MODEL": "gemma-4-e4b"},
        )  # fmt: skip
        with running(router):
            body = {"model": "gemma4-fast", "stream": True,
                    "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
            with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=30) as r:
                lines = r.iter_lines()
                first = next(line for line in lines if line.startswith("data: "))
                os.kill(router.pid, signal.SIGTERM)  # shut down while the stream is in flight
                rest = [line for line in lines if line.startswith("data: ")]
            assert json.loads(first[6:])["model"] == "gemma4-fast"
            assert rest[-1] == "data: [DONE]" and len(rest) == 10
            # uvicorn finishes the stream, then exits by re-raising the signal it caught.
            assert router.popen is not None
            assert router.popen.wait(30) in (0, -signal.SIGTERM)


def test_version_is_the_packages_one() -> None:
    """One place for the version (router/pyproject.toml), printed by the console script."""
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    version = next(
        line.split('"')[1] for line in pyproject.splitlines() if line.startswith("version = ")
    )
    out = run("-m", "adaptive_router.cli", "--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"adaptive-router {version}"


def test_bare_serve_listens_on_this_machine_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --host (and without a key) the router must not answer the whole network: it
    listens on loopback, as uvicorn itself does by default; the image sets ROUTER_HOST=0.0.0.0."""
    monkeypatch.delenv("ROUTER_HOST", raising=False)
    engine = FakeEngine("gemma-4-e4b")
    with serve(engine) as engine_url:
        port = free_port()
        router = Process(
            "router",
            [PY, "-m", "adaptive_router.cli", "serve", "--tier-low-url", engine_url + "/v1",
             "--tier-high-url", engine_url + "/v1", "--port", str(port)],
            tmp_path, ready_url=f"http://127.0.0.1:{port}/livez",
            env={"ROUTER_GPU_MONITOR": "false"},
        )  # fmt: skip
        with running(router):
            log = router.log_path.read_text()
    assert f"Uvicorn running on http://127.0.0.1:{port}" in log, log
