#!/usr/bin/env python3
"""Does the decision move when a prompt's surface changes but its ask does not?

    python benchmarks/surface_probe.py                      # every eval set, the router as shipped
    python benchmarks/surface_probe.py --no-second-opinion  # the complexity model alone

Each evaluation prompt is scored as written, then again:
- with whitespace around it (a leading newline and a trailing blank line, as some clients send);
- wrapped in one neutral wrapper from ``data/routing/surface-probe.json`` (a greeting, thanks, a
  framing line, quotes, a line of personal context), drawn per prompt with a fixed seed. Those
  wrappers were written by someone who never saw the training ones (``benchmarks/_surface.py``);
  any whose prefix or suffix is also a training prefix or suffix is left out, so the figure says
  whether the models learned that such words do not make a task easier or harder, not whether
  they learned the phrases.

Printed per variant: errors at the default threshold (of the same prompts, so comparable with
the as-written row) and how many decisions changed; then the wrapped figures per kind of wrapper.
A robust router changes few decisions and gains few errors.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from _routing_data import EVAL_SETS, ROOT, label_of, read_jsonl
from _surface import WRAPPERS
from measure import add_second_opinion_argument

from adaptive_router import AdaptiveRouter, load_config

PROBE = ROOT / "data" / "routing" / "surface-probe.json"


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower()).strip()


def held_out_wrappers(path: Path = PROBE) -> list[dict[str, str]]:
    """The probe's wrappers that share no prefix or suffix with a training wrapper."""
    seen = {_norm(part) for pair in WRAPPERS for part in pair if _norm(part)}
    wrappers: list[dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))["wrappers"]
    return [
        w
        for w in wrappers
        if not any(_norm(w[k]) in seen for k in ("prefix", "suffix") if _norm(w[k]))
    ]


def wrapped(texts: Sequence[str], seed: int = 0) -> tuple[list[str], list[str]]:
    """Each text inside one held-out wrapper drawn with ``seed``, and that wrapper's kind."""
    wrappers = held_out_wrappers()
    picks = np.random.default_rng(seed).integers(len(wrappers), size=len(texts)).tolist()
    chosen = [wrappers[p] for p in picks]
    return (
        [w["prefix"] + t + w["suffix"] for w, t in zip(chosen, texts, strict=True)],
        [w["kind"] for w in chosen],
    )


def decisions(router: AdaptiveRouter, texts: Sequence[str]) -> np.ndarray:
    threshold = router.config.complexity_threshold
    return np.array([router.decide(t).score >= threshold for t in texts])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, nargs="+", default=list(EVAL_SETS))
    parser.add_argument("--seed", type=int, default=0, help="which wrapper each prompt gets")
    add_second_opinion_argument(parser)
    args = parser.parse_args(argv)

    rows = [r for path in args.data for r in read_jsonl(path)]
    texts = [str(r["prompt"]) for r in rows]
    y = np.array([label_of(r) for r in rows]) == 1
    inside, kind_of = wrapped(texts, args.seed)
    kinds = np.array(kind_of)
    variants = {
        "as written": texts,
        "whitespace around": ["\n" + t + "\n\n" for t in texts],
        "a held-out wrapper": inside,
    }
    config = load_config(
        None,
        use_env=False,
        gpu_monitor=False,
        second_opinion=None if args.second_opinion else False,
    )
    written = len(json.loads(PROBE.read_text(encoding="utf-8"))["wrappers"])
    print(
        f"{len(texts)} prompts from {len(args.data)} sets; "
        f"{len(held_out_wrappers())} held-out wrappers (of {written})\n"
    )
    print("| variant | errors | decisions changed |\n|---|---:|---:|")
    with AdaptiveRouter(config) as router:
        base = decisions(router, texts)
        inside_decisions = base
        for name, variant in variants.items():
            got = decisions(router, variant)
            if variant is inside:
                inside_decisions = got
            print(f"| {name} | {int((got != y).sum())} | {int((got != base).sum())} |")
    print("\nPer kind of wrapper:\n\n| kind | prompts | errors as written | wrapped | changed |")
    print("|---|---:|---:|---:|---:|")
    for kind in sorted(set(kinds)):
        k = kinds == kind
        print(
            f"| {kind} | {int(k.sum())} | {int((base[k] != y[k]).sum())} | "
            f"{int((inside_decisions[k] != y[k]).sum())} | "
            f"{int((inside_decisions[k] != base[k]).sum())} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
