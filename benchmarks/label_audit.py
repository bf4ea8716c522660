#!/usr/bin/env python3
"""Are the evaluation sets' labels the problem? Their written labels against a blind audit.

    python benchmarks/label_audit.py

``data/routing/eval-audit.jsonl`` holds, for every prompt of every evaluation set, the labels two
more labellers gave it (``tier_low``, ``tier_high`` or ``borderline``), blind: the prompts shuffled
(``eval.jsonl`` and ``eval2.jsonl`` together, ``eval3.jsonl`` to ``eval12.jsonl`` each on its own,
before its first read), ids and labels hidden, each labeller given only
``data/README.md``'s rule and half of the prompts (two labellers a half; ``labels[0]`` is the first
of its half). For each set this prints how often each labeller agrees with the written label and
with the other, how many of the router's errors (its own score, defaults, GPU rules off) both
labellers side with the written label on, and the router's figures on the prompts where both agree
with the written label. Read to report only, like the evaluation sets.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _metrics import auroc, balanced_accuracy
from _routing_data import EVAL_AUDIT, EVAL_SETS, label_of, read_jsonl
from measure import add_second_opinion_argument
from routing_eval import FAMILY_FLOOR, per_family

from adaptive_router import AdaptiveRouter, RoutingConfig


def audit_set(path: Path, audit: dict[str, list[str]], router: AdaptiveRouter) -> None:
    rows = read_jsonl(path)
    n = len(rows)
    written = [r["label"] for r in rows]
    firsts = [audit[r["id"]][0] for r in rows]
    seconds = [audit[r["id"]][1] for r in rows]
    scores = [router.decide(r["prompt"]).score for r in rows]
    wrong = [(s >= 0.5) != (label_of(r) == 1.0) for r, s in zip(rows, scores, strict=True)]
    # Both labellers gave the written label.
    clear = [w == a == b for w, a, b in zip(written, firsts, seconds, strict=True)]

    def share(flags: list[bool]) -> str:
        return f"{sum(flags)} of {len(flags)} ({sum(flags) / len(flags):.1%})"

    print(f"{path.name}: {n} prompts")
    pairs = {
        "the first labeller gives the written label": zip(written, firsts, strict=True),
        "the second labeller gives the written label": zip(written, seconds, strict=True),
        "the two labellers agree": zip(firsts, seconds, strict=True),
    }
    for what, pair in pairs.items():
        print(f"  {what}: {share([x == z for x, z in pair])}")
    errors = [i for i in range(n) if wrong[i]]
    rights = [i for i in range(n) if not wrong[i]]
    print(
        f"  router's errors: {len(errors)}; both labellers give the written label on "
        f"{sum(clear[i] for i in errors)}, neither on "
        f"{sum(firsts[i] != written[i] and seconds[i] != written[i] for i in errors)} "
        f"(router right: both give it on {share([clear[i] for i in rights])})"
    )
    kept = [i for i in range(n) if clear[i]]
    labels = [label_of(rows[i]) for i in kept]
    kept_scores = [scores[i] for i in kept]
    by_family = per_family([rows[i] for i in kept], {"router": kept_scores}, {"router": 0.5})
    low = [
        f"{family} {round(row['router'] * row['n'])}/{row['n']:.0f}"
        for family, row in by_family.items()
        if row["router"] < FAMILY_FLOOR
    ]
    print(
        f"  where both give the written label ({len(kept)} prompts): AUROC "
        f"{auroc(labels, kept_scores):.3f}, balanced accuracy "
        f"{balanced_accuracy(labels, [s >= 0.5 for s in kept_scores]):.3f}, "
        f"{sum(wrong[i] for i in kept)} errors, families under {FAMILY_FLOOR:.0%}: "
        f"{len(low)} of {len(by_family)}" + (f" ({', '.join(low)})" if low else "")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_second_opinion_argument(parser)  # as the audit was first read (round 7)
    args = parser.parse_args(argv)
    audit = {r["id"]: list(r["labels"]) for r in read_jsonl(EVAL_AUDIT)}
    config = RoutingConfig(gpu_monitor=False, second_opinion=args.second_opinion)
    with AdaptiveRouter(config) as router:
        for path in EVAL_SETS:
            audit_set(path, audit, router)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
