"""Closed-loop load: N clients, each streaming one chat request after another, for D seconds.

    python benchmarks/load_test.py --base-url http://127.0.0.1:9000 --clients 200 \
        --duration 60 --api-key $ROUTER_API_KEY --out results/load.json \
        --watch-pid $(pgrep -f 'adaptive-router serve')

Prompts alternate between an easy and a hard one, so a router spreads them over both tiers.
``--hard-base-url`` sends the hard ones elsewhere: pointing --base-url at tier_low and
--hard-base-url at tier_high measures the same traffic without the router, the baseline for the
router's added time to first token. ``--watch-pid`` records that process's memory (RSS) at the
start and the end. Prints a JSON summary (measure.summarize) and writes it with --out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
from measure import RequestResult, auth_headers, chat_body, stream_chat, summarize

EASY = "What is the capital of France?"
HARD = (
    "Prove that there are infinitely many prime numbers, then derive the time complexity of the "
    "sieve of Eratosthenes step by step and explain why it is O(n log log n)."
)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    headers = auth_headers(args.api_key)
    easy_url = args.base_url.rstrip("/") + "/v1/chat/completions"
    hard_url = (args.hard_base_url or args.base_url).rstrip("/") + "/v1/chat/completions"
    limits = httpx.Limits(max_connections=args.clients + 8, max_keepalive_connections=args.clients)
    timeout = httpx.Timeout(args.timeout, connect=10)
    results: list[RequestResult] = []
    tiers: dict[str, int] = {}
    replicas: dict[str, int] = {}

    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:

        async def one(i: int, record: bool, c: int) -> None:
            hard = i % 2 == 1
            # Each client is a person to the router (its fair line and per-person cap).
            body = chat_body(
                args.hard_model if hard and args.hard_model else args.model,
                [{"role": "user", "content": HARD if hard else EASY}],
                args.max_tokens,
                **{"user": f"load-client-{c}", **args.extra_body},
            )
            result = await stream_chat(client, hard_url if hard else easy_url, body, headers)
            if record:
                results.append(result)
                tier = result.headers.get("x-router-tier", "direct")
                tiers[tier] = tiers.get(tier, 0) + 1
                if "x-router-replica" in result.headers:  # tiers with several replicas
                    where = f"{tier} {result.headers['x-router-replica']}"
                    replicas[where] = replicas.get(where, 0) + 1

        # Warm-up: every client opens its connection and the engines see each prompt once.
        await asyncio.gather(*(one(i, False, i) for i in range(args.clients)))
        rss_start = rss_mb(args.watch_pid) if args.watch_pid else None
        deadline = time.perf_counter() + args.duration
        started = time.perf_counter()

        async def client_loop(c: int) -> None:
            i = c
            while time.perf_counter() < deadline:
                await one(i, True, c)
                i += 1

        await asyncio.gather(*(client_loop(c) for c in range(args.clients)))
        wall = time.perf_counter() - started
    summary = summarize(results, wall)
    summary.update(
        clients=args.clients,
        duration_s=args.duration,
        max_tokens=args.max_tokens,
        base_url=args.base_url,
        hard_base_url=args.hard_base_url,
        served_by=tiers,
        served_by_replica=replicas,
    )
    if args.watch_pid:
        rss_end = rss_mb(args.watch_pid)
        summary.update(
            rss_start_mb=round(rss_start or 0, 1),
            rss_end_mb=round(rss_end, 1),
            rss_growth_mb=round(rss_end - (rss_start or 0), 1),
        )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base-url", required=True, help="server root, without /v1")
    parser.add_argument("--hard-base-url", help="send the hard prompts here instead")
    parser.add_argument("--model", default="gemma4-fast")
    parser.add_argument("--hard-model", help="model for the hard prompts (with --hard-base-url)")
    parser.add_argument(
        "--extra-body",
        type=json.loads,
        default={},
        help="JSON merged into every request, e.g. '{\"ignore_eos\": true}' for llama-server",
    )
    parser.add_argument("--api-key", default="")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of measured load")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=120.0, help="per request, seconds")
    parser.add_argument("--watch-pid", type=int, help="report this process's RSS growth")
    parser.add_argument("--out", type=Path, help="write the JSON summary here")
    args = parser.parse_args(argv)
    try:
        import uvloop  # the client's own CPU cost must not be what limits the measurement

        summary = uvloop.run(run(args))
    except ImportError:
        summary = asyncio.run(run(args))
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
