#!/usr/bin/env python3
"""Does a greeting or a thank-you move the router's decision? Held-out prompts as written and
wrapped in courtesies, by the training recipe with and without the courtesy writers' prompts.

    python benchmarks/politeness_check.py [--every 2] [--folds 5]

A hard prompt does not get easier because its writer said hello. The script deals every
``--every``-th training row's families into ``--folds`` groups; each group is scored by the
training recipe (``train_scorer.py``'s) fitted on the other groups, once with every source and
once without ``--without`` (default: the two sources written to make courtesy independent of
difficulty, ``written:train-z`` and ``written:train-zz``, which are never scored here either).
Each held-out prompt is scored as written and inside a greeting, a sign-off or both (seeded;
courtesies chosen to be absent from what those writers were asked for, so the model cannot have
learnt the very phrases). Prints AUROC and balanced accuracy both ways, and the share of hard
prompts a wrapper turns easy and of easy ones it turns hard. About a minute per variant on two
cores.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence

import numpy as np
import train_scorer as ts
from _routing_data import label_of, training_rows
from threadpoolctl import threadpool_limits

from adaptive_router.wordpiece import WordPiece

GREETINGS = ("Yo, ", "Greetings, ", "Dear assistant, ", "Hiya! ", "Real quick: ", "Morning all, ",
             "Hoping you can help: ", "Hey friend, ")  # fmt: skip
SIGN_OFFS = (" Much appreciated!", " ty!", "\n\nBest regards", " Many thanks.", " cheers!!",
             "\n\nKind regards, Sam")  # fmt: skip
COURTESY_SOURCES = ("written:train-z", "written:train-zz")


def wrap(text: str, rng: random.Random) -> str:
    """The prompt inside a greeting (its first letter lowered), a sign-off, or both."""
    roll = rng.random()
    lowered = text[:1].lower() + text[1:]
    if roll < 0.45:
        return rng.choice(GREETINGS) + lowered
    if roll < 0.8:
        return text + rng.choice(SIGN_OFFS)
    return rng.choice(GREETINGS) + lowered + rng.choice(SIGN_OFFS)


def flips(before: np.ndarray, after: np.ndarray) -> float:
    """Share of rows whose side of the balanced point (0) changes."""
    return float(np.mean((before >= 0) != (after >= 0))) if len(before) else 0.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--every", type=int, default=2, help="use every N-th training row")
    parser.add_argument("--folds", type=int, default=5, help="family groups held out in turn")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--without", nargs="*", default=list(COURTESY_SOURCES),
                        help="sources the second variant leaves out of training")  # fmt: skip
    args = parser.parse_args(argv)

    rows = training_rows()[:: args.every]
    left_out = np.array([r["source"] in set(args.without) for r in rows])
    if not left_out.any():
        print(f"error: no training row comes from {args.without}", file=sys.stderr)
        return 2
    vectors, vocab = ts.load_static()
    tokenizer = WordPiece(dict(zip(vocab, range(len(vocab)), strict=True)))
    prompts = [str(r["prompt"]) for r in rows]
    rng = random.Random(args.seed)
    n = len(rows)
    inputs = ts.read_inputs(prompts + [wrap(p, rng) for p in prompts], vectors, tokenizer)
    y_rows = np.array([label_of(r) for r in rows])
    y = np.concatenate([y_rows, y_rows])  # the wrapped copies are only ever scored
    folds = np.array(ts.family_folds([str(r["family"]) for r in rows], args.folds))
    scored = ~left_out
    hard, easy = (y_rows == 1) & scored, (y_rows == 0) & scored
    print(f"{n} rows (1 in {args.every}), {int(left_out.sum())} from {', '.join(args.without)}"
          f" (trained on or not, never scored); {args.folds} family folds")  # fmt: skip
    print()
    print("| trained on | as written AUROC / BA | wrapped AUROC / BA | hard turned easy "
          "| easy turned hard |")  # fmt: skip
    print("|---|---:|---:|---:|---:|")
    with threadpool_limits(limits=1):
        for name, keep_left_out in (("every source", True), ("without them", False)):
            started = time.monotonic()
            clean, wrapped = np.zeros(n), np.zeros(n)
            for group in sorted(set(folds)):
                held = np.flatnonzero((folds == group) & scored)
                train = np.flatnonzero((folds != group) & (keep_left_out | ~left_out))
                fitted = ts.fit(inputs, y, train, ts.Recipe())
                clean[held] = fitted.decision(inputs, held)
                wrapped[held] = fitted.decision(inputs, held + n)
            a_c, b_c = ts.figures(y_rows[scored], clean[scored])
            a_w, b_w = ts.figures(y_rows[scored], wrapped[scored])
            print(f"| {name} | {a_c:.4f} / {b_c:.3f} | {a_w:.4f} / {b_w:.3f} | "
                  f"{flips(clean[hard], wrapped[hard]):.1%} | "
                  f"{flips(clean[easy], wrapped[easy]):.1%} |", flush=True)  # fmt: skip
            print(f"  ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
