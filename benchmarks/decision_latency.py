#!/usr/bin/env python3
"""Time the router's decision (scoring plus rules): CPU per decision, by prompt length.

    python benchmarks/decision_latency.py [--repeats 20] [--json out.json]

Two measurements, each call timed on its own with ``time.thread_time_ns`` (the CPU the calling
thread used: on a shared machine, wall-clock time also counts the other processes):
- the training and evaluation prompts as they are (``data/routing/``, every prompt up to 2,000
  characters), each decided ``--repeats`` times: mean, p50, p99 of the whole decision;
- prompts built from that text, cut or repeated to fixed lengths up to 64,000 characters.
The first decision of a fresh router is timed apart (the tokenizer's word cache is cold then).
The GPU monitor is off, as it runs beside the request path. The decision includes the encoder's
second opinion where the complexity model asks for it (the share of prompts is printed), run in
the calling thread as the synchronous API does; the encoder's pass alone is timed by input
length too (``--no-second-opinion``: the linear model alone). It also prints the decision
engine's resident memory: a fresh interpreter that imports the router, builds it, decides once
and runs the encoder once on its longest input (peak ``ru_maxrss``; nothing of this script
loaded).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from _routing_data import EVAL_SET, read_jsonl, training_rows
from measure import add_second_opinion_argument, percentile

from adaptive_router import AdaptiveRouter, ComplexityScorer, RoutingConfig
from adaptive_router.encoder import HEAD_TOKENS, TAIL_TOKENS, shipped_encoder

ROOT = Path(__file__).resolve().parents[1]

LENGTHS = (50, 200, 500, 1000, 2000, 8000, 32000, 64000)


def prompts_up_to(limit: int) -> list[str]:
    rows = training_rows() + read_jsonl(EVAL_SET)
    return [r["prompt"] for r in rows if len(r["prompt"]) <= limit]


ENGINE_MEMORY = """
import resource
from adaptive_router import AdaptiveRouter, RoutingConfig
router = AdaptiveRouter(RoutingConfig(gpu_monitor=False, second_opinion={second_opinion}))
router.route("What time is it in Tokyo?")
if router.scorer.encoder is not None:
    router.scorer.encoder.logit(list(range(1000, 1200)))
router.shutdown()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def engine_memory_mib(second_opinion: bool) -> float:
    """Peak resident memory (MiB) of a fresh interpreter holding the decision engine alone."""
    code = ENGINE_MEMORY.format(second_opinion=second_opinion)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]) / 1024  # ru_maxrss is in KiB on Linux


def timings_us(fn: object, prompts: list[str], repeats: int) -> list[float]:
    call = fn  # a bound method; looked up once
    clock = time.thread_time_ns
    out: list[float] = []
    for _ in range(repeats):
        for prompt in prompts:
            start = clock()
            call(prompt)  # type: ignore[operator]
            out.append((clock() - start) / 1000.0)
    return out


def measure(fn: object, prompts: list[str], repeats: int) -> tuple[float, float, float]:
    t = timings_us(fn, prompts, repeats)
    return sum(t) / len(t), percentile(t, 50), percentile(t, 99)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", type=Path, help="write the table as JSON here")
    add_second_opinion_argument(parser)
    args = parser.parse_args(argv)

    started = time.thread_time_ns()
    encoder = shipped_encoder() if args.second_opinion else None
    scorer = ComplexityScorer(encoder=encoder)
    load_ms = (time.thread_time_ns() - started) / 1e6
    router = AdaptiveRouter(RoutingConfig(gpu_monitor=False), scorer=scorer)
    real = prompts_up_to(2000)
    first = timings_us(router.route, real[:1], 1)[0]
    print(
        f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()}; "
        f"CPU time of the calling thread; loading the models: {load_ms:.0f} ms; "
        f"first decision: {first:.0f} µs; the engine's resident memory: "
        f"{engine_memory_mib(args.second_opinion):.1f} MiB"
    )
    if encoder is not None:
        asked = sum(router.assess(p, defer=True).needs_second_opinion for p in real)
        print(f"second opinion asked for {asked} of {len(real)} prompts ({asked / len(real):.1%})")
        for n in (16, 32, 64, HEAD_TOKENS + TAIL_TOKENS):
            ids = list(range(2000, 2000 + n - 2))  # + [CLS] and [SEP]
            e_mean, _, e99 = measure(lambda _p, ids=ids: encoder.logit(ids), ["x"] * 20, 5)
            print(f"the encoder's pass, {n} tokens: mean {e_mean:.0f} µs, p99 {e99:.0f} µs")
    mean, p50, p99 = measure(router.route, real, args.repeats)
    print(
        f"{len(real)} real prompts up to 2,000 characters x {args.repeats}: decision mean "
        f"{mean:.1f} µs, p50 {p50:.1f} µs, p99 {p99:.1f} µs"
    )
    rows: list[dict[str, float]] = [
        {"chars": -2000, "decide_mean_us": round(mean, 1), "decide_p50_us": round(p50, 1),
         "decide_p99_us": round(p99, 1)}
    ]  # fmt: skip
    text = "\n".join(real)
    print(
        f"{'chars':>7} | {'score mean':>10} {'score p99':>9} | "
        f"{'decide mean':>11} {'decide p50':>10} {'decide p99':>10}  (µs, 8 prompts each)"
    )
    for length in LENGTHS:
        # 8 different prompts of this length, taken at different offsets of the corpus.
        step = max(1, (len(text) - length) // 8)
        prompts = [
            (text * (1 + length // len(text)))[i * step : i * step + length] for i in range(8)
        ]
        s_mean, _, s99 = measure(scorer.score, prompts, args.repeats)
        d_mean, d50, d99 = measure(router.route, prompts, args.repeats)
        rows.append(
            {
                "chars": length,
                "score_mean_us": round(s_mean, 1),
                "score_p99_us": round(s99, 1),
                "decide_mean_us": round(d_mean, 1),
                "decide_p50_us": round(d50, 1),
                "decide_p99_us": round(d99, 1),
            }
        )
        print(f"{length:>7} | {s_mean:10.1f} {s99:9.1f} | {d_mean:11.1f} {d50:10.1f} {d99:10.1f}")
    router.shutdown()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
