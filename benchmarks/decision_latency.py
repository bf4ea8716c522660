#!/usr/bin/env python3
"""Time the router's decision (scoring plus rules) by prompt length: p50 / p99 in microseconds.

    python benchmarks/decision_latency.py [--repeats 300] [--json out.json]

Prompts are built from the dev set's own text (so the words are realistic), cut or repeated to
each target length. Each prompt is decided ``--repeats`` times; every call is timed on its own
with ``time.perf_counter_ns``. The GPU monitor is off, as it runs beside the request path.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from measure import percentile

from adaptive_router import AdaptiveRouter, ComplexityScorer, RoutingConfig

ROOT = Path(__file__).resolve().parents[1]

LENGTHS = (50, 200, 500, 1000, 2000, 8000, 32000, 64000)


def corpus(path: Path) -> str:
    with path.open(encoding="utf-8") as f:
        return "\n".join(json.loads(line)["prompt"] for line in f if line.strip())


def measure(fn: object, prompts: list[str], repeats: int) -> tuple[float, float]:
    call = fn  # a bound method; looked up once
    timings: list[float] = []
    for _ in range(repeats):
        for prompt in prompts:
            start = time.perf_counter_ns()
            call(prompt)  # type: ignore[operator]
            timings.append((time.perf_counter_ns() - start) / 1000.0)
    return percentile(timings, 50), percentile(timings, 99)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "routing_devset.jsonl")
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--json", type=Path, help="write the table as JSON here")
    args = parser.parse_args(argv)

    text = corpus(args.data)
    scorer = ComplexityScorer()
    router = AdaptiveRouter(RoutingConfig(gpu_monitor=False), scorer=scorer)
    rows = []
    print(
        f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
        f"{args.repeats} repeats x 8 prompts per length"
    )
    print(
        f"{'chars':>7} | {'score p50':>9} {'score p99':>9} | "
        f"{'decide p50':>10} {'decide p99':>10}  (µs)"
    )
    for length in LENGTHS:
        # 8 different prompts of this length, taken at different offsets of the corpus.
        step = max(1, (len(text) - length) // 8)
        prompts = [
            (text * (1 + length // len(text)))[i * step : i * step + length] for i in range(8)
        ]
        s50, s99 = measure(scorer.score, prompts, args.repeats)
        d50, d99 = measure(router.route, prompts, args.repeats)
        rows.append(
            {
                "chars": length,
                "score_p50_us": round(s50, 1),
                "score_p99_us": round(s99, 1),
                "decide_p50_us": round(d50, 1),
                "decide_p99_us": round(d99, 1),
            }
        )
        print(f"{length:>7} | {s50:9.1f} {s99:9.1f} | {d50:10.1f} {d99:10.1f}")
    router.shutdown()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
