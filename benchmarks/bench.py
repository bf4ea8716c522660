"""Engine benchmark behind the README table: any OpenAI-compatible server, streamed requests.

    python benchmarks/bench.py --base-url http://127.0.0.1:8000 --model gemma-4-e4b \
        --concurrency 1,10 --requests 50 --out results/bench
    python benchmarks/bench.py --engines benchmarks/engines.example.yaml --out results/bench

For each engine and concurrency level: a warm-up, then --requests streamed chat requests from a
fixed prompt set (short_chat, long_rag, code; benchmarks/prompts.py) with that many in flight.
Measures (benchmarks/measure.py) time to first token, inter-token latency, end-to-end latency and
decode tokens/s at p50/p95, requests/s and errors. Writes one JSON per run, summary.json, a
markdown table (results.md) and a plot of TTFT against concurrency (ttft_vs_concurrency.png).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from measure import RequestResult, auth_headers, chat_body, int_list, stream_chat, summarize
from prompts import PROMPT_SETS, prompt_set


@dataclass
class Engine:
    name: str
    base_url: str
    model: str
    api_key: str = ""
    extra_body: dict[str, Any] | None = None


def load_engines(path: Path) -> list[Engine]:
    """engines.yaml: ``engines: [{name, base_url, model, api_key_env?, extra_body?}]``."""
    data = yaml.safe_load(path.read_text())
    engines = []
    for item in data.get("engines", []):
        key_env = item.get("api_key_env")
        engines.append(
            Engine(
                name=item["name"],
                base_url=item["base_url"],
                model=item["model"],
                api_key=os.environ.get(key_env, "") if key_env else item.get("api_key", ""),
                extra_body=item.get("extra_body"),
            )
        )
    if not engines:
        raise SystemExit(f"error: {path} lists no engines (expected 'engines: [...]')")
    return engines


class Progress:
    """One line on stderr, rewritten in place: no dependency for a progress bar."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done, self.errors = label, total, 0, 0
        self.interactive = sys.stderr.isatty()

    def step(self, ok: bool) -> None:
        self.done += 1
        self.errors += not ok
        if self.interactive or self.done == self.total:
            width = 30
            filled = width * self.done // self.total
            end = "\n" if self.done == self.total else ""
            print(
                f"\r{self.label:<28} [{'#' * filled}{'.' * (width - filled)}] "
                f"{self.done}/{self.total} errors {self.errors}",
                end=end,
                file=sys.stderr,
                flush=True,
            )


async def run_level(
    engine: Engine,
    concurrency: int,
    requests: int,
    warmup: int,
    prompts: list[list[dict[str, Any]]],
    max_tokens: int,
    timeout: float,
) -> dict[str, Any]:
    url = engine.base_url.rstrip("/") + "/v1/chat/completions"
    headers = auth_headers(engine.api_key)
    limits = httpx.Limits(max_connections=concurrency + 4)
    extra = engine.extra_body or {}

    def body(i: int, worker: int = 0) -> dict[str, Any]:
        # Each worker is a person to the router (its fair line and per-person cap).
        return chat_body(engine.model, prompts[i % len(prompts)], max_tokens,
                         **{"user": f"bench-client-{worker}", **extra})  # fmt: skip

    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=10), limits=limits) as c:
        for i in range(warmup):
            await stream_chat(c, url, body(i), headers)
        progress = Progress(f"{engine.name} c={concurrency}", requests)
        queue = iter(range(requests))
        results: list[RequestResult] = []

        async def worker(w: int) -> None:
            for i in queue:
                result = await stream_chat(c, url, body(i, w), headers)
                results.append(result)
                progress.step(result.ok)

        started = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        wall = time.perf_counter() - started
    summary = summarize(results, wall)
    summary.update(engine=engine.name, base_url=engine.base_url, model=engine.model)
    summary["concurrency"] = concurrency
    return summary


def markdown_table(runs: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"Measured {meta['date']} on {meta['host']} with `{meta['command']}`; prompt set "
        f"{meta['prompt_set']}, max_tokens {meta['max_tokens']}, "
        f"{meta['requests']} requests per row.",
        "",
        "| Engine | Concurrency | TTFT p50 / p95 (ms) | ITL p50 / p95 (ms) | E2E p50 / p95 (ms) "
        "| Decode tok/s p50 | Requests/s | Errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r['engine']} | {r['concurrency']} "
            f"| {r['ttft_p50_ms']:.0f} / {r['ttft_p95_ms']:.0f} "
            f"| {r['itl_p50_ms']:.1f} / {r['itl_p95_ms']:.1f} "
            f"| {r['e2e_p50_ms']:.0f} / {r['e2e_p95_ms']:.0f} | {r['tokens_per_s_p50']:.1f} "
            f"| {r['requests_per_s']:.2f} | {r['errors']} |"
        )
    return "\n".join(lines) + "\n"


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in dict.fromkeys(r["engine"] for r in runs):
        mine = sorted((r for r in runs if r["engine"] == name), key=lambda r: r["concurrency"])
        xs = [r["concurrency"] for r in mine]
        ax.plot(xs, [r["ttft_p50_ms"] for r in mine], marker="o", label=f"{name} p50")
        ax.plot(
            xs, [r["ttft_p95_ms"] for r in mine], marker="x", linestyle="--", label=f"{name} p95"
        )
    ax.set_xlabel("concurrent requests")
    ax.set_ylabel("time to first token (ms)")
    ax.set_title("Time to first token against concurrency")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _redacted(argv: list[str]) -> list[str]:
    """The command line for the report, without the API key."""
    out, hide = [], False
    for arg in argv:
        out.append(
            "***"
            if hide
            else arg.split("=", 1)[0] + "=***"
            if arg.startswith("--api-key=")
            else arg
        )
        hide = arg == "--api-key"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--base-url", help="server root (without /v1)")
    target.add_argument("--engines", type=Path, help="YAML file listing several engines")
    parser.add_argument("--model", help="model name to request (with --base-url)")
    parser.add_argument("--name", help="label for the engine in the table (with --base-url)")
    parser.add_argument("--api-key", default=os.environ.get("BENCH_API_KEY", ""))
    parser.add_argument(
        "--concurrency", type=int_list, default=[1, 10], help="comma-separated levels (1,10)"
    )
    parser.add_argument("--requests", type=int, default=50, help="measured requests per level")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured requests per level")
    parser.add_argument("--prompt-set", choices=PROMPT_SETS, default="short_chat")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--extra-body", type=json.loads, default=None, help="JSON merged in")
    parser.add_argument("--timeout", type=float, default=300.0, help="per request, seconds")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    args = parser.parse_args(argv)

    if args.base_url:
        if not args.model:
            parser.error("--model is required with --base-url")
        engines = [
            Engine(
                args.name or args.model, args.base_url, args.model, args.api_key, args.extra_body
            )
        ]
    else:
        engines = load_engines(args.engines)
    levels = args.concurrency
    if min(levels) < 1 or args.requests < 1:
        parser.error("--concurrency levels and --requests must be at least 1")
    prompts = prompt_set(args.prompt_set)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host": f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs)",
        "command": "python benchmarks/bench.py " + " ".join(_redacted(argv or sys.argv[1:])),
        "prompt_set": args.prompt_set,
        "max_tokens": args.max_tokens,
        "requests": args.requests,
    }
    runs = []
    for engine in engines:
        for level in levels:
            summary = asyncio.run(
                run_level(
                    engine, level, args.requests, args.warmup, prompts, args.max_tokens,
                    args.timeout,
                )
            )  # fmt: skip
            summary.update(prompt_set=args.prompt_set, max_tokens=args.max_tokens)
            runs.append(summary)
            (args.out / f"{engine.name}_c{level}.json").write_text(json.dumps(summary, indent=2))
    (args.out / "summary.json").write_text(json.dumps({"meta": meta, "runs": runs}, indent=2))
    table = markdown_table(runs, meta)
    (args.out / "results.md").write_text(table)
    plot(runs, args.out / "ttft_vs_concurrency.png")
    print(table)
    failed = sum(r["errors"] for r in runs)
    if failed:
        print(
            f"warning: {failed} requests failed; see the JSON files in {args.out}", file=sys.stderr
        )
    return 1 if all(r["ok"] == 0 for r in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
