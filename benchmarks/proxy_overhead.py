#!/usr/bin/env python3
"""What the router adds to a request: direct vs through the router (and LiteLLM, if installed).

    python benchmarks/proxy_overhead.py [--concurrency 1,16,64] [--requests 400] [--json out.json]

Starts, each in its own process on loopback: a fake OpenAI engine that streams
``--tokens`` tokens with no delay (so every millisecond measured is overhead), the router
(uvicorn + uvloop + httptools, the production command line) in front of it, and — when the
``litellm`` package is importable — a LiteLLM proxy in front of the same engine. Then, for each
concurrency, it streams ``--requests`` chat completions through each path and reports time to
first token (p50/p95), total time (p50) and streamed requests per second, plus the router's
resident memory before and after. The load generator shares the machine with the servers: on a
2-core VM the absolute numbers include that contention, the differences are what matter.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SERVED = "gemma-4-e4b"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {timeout:.0f} s")


@contextmanager
def process(cmd: list[str], ready_url: str, env: dict[str, str] | None = None) -> Iterator[int]:
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        try:
            wait_ready(ready_url)
            yield proc.pid
        except RuntimeError:
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace")[-3000:])
            raise
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def run_load(base_url: str, model: str, concurrency: int, requests: int) -> dict[str, float]:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "What time is it in Tokyo?"}],
        "stream": True,
        "max_tokens": 16,
    }
    ttfts: list[float] = []
    totals: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=60.0, limits=limits) as client:

        async def one() -> None:
            nonlocal errors
            start = time.perf_counter()
            first = None
            try:
                async with client.stream("POST", "/chat/completions", json=body) as r:
                    if r.status_code != 200:
                        errors += 1
                        await r.aread()
                        return
                    async for _ in r.aiter_raw():
                        if first is None:
                            first = time.perf_counter()
            except httpx.HTTPError:
                errors += 1
                return
            end = time.perf_counter()
            ttfts.append(((first or end) - start) * 1000)
            totals.append((end - start) * 1000)

        async def worker() -> None:
            while True:
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await one()

        for _ in range(min(concurrency, 8)):  # warm-up: open connections, fill caches
            await one()
        ttfts.clear()
        totals.clear()
        errors = 0
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "ttft_p50_ms": percentile(ttfts, 0.50),
        "ttft_p95_ms": percentile(ttfts, 0.95),
        "total_p50_ms": percentile(totals, 0.50),
        "requests_per_s": len(totals) / elapsed,
        "errors": errors,
    }


def litellm_command(port: int, engine_url: str) -> tuple[list[str], Path] | None:
    exe = shutil.which("litellm")
    if exe is None:
        return None
    config = Path(tempfile.mkdtemp()) / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: gemma4-fast\n"
        "    litellm_params:\n"
        f"      model: openai/{SERVED}\n"
        f"      api_base: {engine_url}\n"
        "      api_key: none\n",
        encoding="utf-8",
    )
    return [exe, "--config", str(config), "--port", str(port), "--num_workers", "1"], config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--requests", type=int, default=400, help="per path and concurrency")
    parser.add_argument("--tokens", type=int, default=16, help="tokens each fake reply streams")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--no-litellm", action="store_true")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]

    py = sys.executable
    engine_port, router_port = free_port(), free_port()
    engine_url = f"http://127.0.0.1:{engine_port}/v1"
    engine_cmd = [py, "-m", "adaptive_router.fake_engine", "--port", str(engine_port),
                  "--model", SERVED, "--flavor", "vllm", "--tokens", str(args.tokens)]  # fmt: skip
    router_cmd = [py, "-m", "adaptive_router.middleware", "--tier-low-url", engine_url,
                  "--tier-high-url", engine_url, "--host", "127.0.0.1", "--port", str(router_port),
                  "--log-level", "warning"]  # fmt: skip
    router_env = {"ROUTER_GPU_MONITOR": "false", "ROUTER_TIER_HIGH_MODEL": SERVED}
    paths: list[tuple[str, str, str]] = [
        ("direct", engine_url, SERVED),
        ("router", f"http://127.0.0.1:{router_port}/v1", "gemma4-fast"),
    ]
    results: dict[str, dict[int, dict[str, float]]] = {}
    memory: dict[str, float] = {}
    with (
        process(engine_cmd, engine_url.replace("/v1", "/health")),
        process(router_cmd, f"http://127.0.0.1:{router_port}/health", router_env) as router_pid,
    ):
        extra = None if args.no_litellm else litellm_command(free_port(), engine_url)
        memory["router_rss_start_mb"] = rss_mb(router_pid)
        for name, url, model in paths:
            results[name] = {}
            for c in levels:
                results[name][c] = asyncio.run(run_load(url, model, c, args.requests))
                row = {k: round(v, 2) for k, v in results[name][c].items()}
                print(f"  {name:7s} c={c:<3d} {json.dumps(row)}")
        memory["router_rss_end_mb"] = rss_mb(router_pid)
        if extra is not None:
            cmd, _ = extra
            port = int(cmd[cmd.index("--port") + 1])
            try:
                with process(cmd, f"http://127.0.0.1:{port}/health/liveliness"):
                    results["litellm"] = {}
                    for c in levels:
                        results["litellm"][c] = asyncio.run(
                            run_load(f"http://127.0.0.1:{port}/v1", "gemma4-fast", c, args.requests)
                        )
            except RuntimeError as exc:
                print(f"LiteLLM did not start, left out: {exc}")
        else:
            print("(litellm not installed: LiteLLM column left out)")

    print()
    print(
        "| path | concurrency | TTFT p50 (ms) | TTFT p95 (ms) | added TTFT p50 (ms) "
        "| total p50 (ms) | req/s | errors |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, by_c in results.items():
        for c, r in by_c.items():
            added = r["ttft_p50_ms"] - results["direct"][c]["ttft_p50_ms"]
            print(f"| {name} | {c} | {r['ttft_p50_ms']:.2f} | {r['ttft_p95_ms']:.2f} | "
                  f"{'—' if name == 'direct' else f'{added:+.2f}'} | {r['total_p50_ms']:.2f} | "
                  f"{r['requests_per_s']:.0f} | {r['errors']:.0f} |")  # fmt: skip
    print(f"\nrouter RSS: {memory['router_rss_start_mb']:.1f} MB before, "
          f"{memory['router_rss_end_mb']:.1f} MB after")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"results": results, "memory": memory}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
