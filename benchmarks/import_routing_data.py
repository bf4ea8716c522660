#!/usr/bin/env python3
"""Copy prompts written by family into data/routing/, checked, and disjoint from the eval sets.

    python benchmarks/import_routing_data.py --train a=DIR_A --train b=DIR_B --eval EVAL.jsonl
    python benchmarks/import_routing_data.py --relabel-devset RELABEL.jsonl

Each ``--train PREFIX=DIR`` copies ``DIR/*.jsonl`` to ``data/routing/train/PREFIX-<name>``;
``--eval`` copies one file to ``data/routing/eval.jsonl``. ``--relabel-devset`` gives the dev
set's rows the labels of a relabelling by the rule of ``data/README.md`` (one line per dev-set
row: ``{"id", "label": "tier_high"|"tier_low"|"drop", "note"}``): a changed row keeps its old
label in ``was`` and the reason in ``relabel_note``; a ``drop`` row (borderline) is removed.
Running it again on the relabelled file changes nothing. Every row must carry ``id``,
``prompt``, ``label`` (tier_high/tier_low), ``family``, ``source`` and ``license``; ids must be
unique. Training rows that repeat another training row, or that are the same prompt as an
evaluation prompt (of either evaluation set) or a near-duplicate of one (see
``_routing_data.overlaps``), are dropped and listed: the evaluation sets are never changed to fit
the training data.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _routing_data import (
    DEVSET,
    EVAL_SET,
    EVAL_SETS,
    LABELS,
    OVERLAP_THRESHOLD,
    REQUIRED,
    TRAIN_DIR,
    Row,
    normalise,
    overlaps,
    read_jsonl,
    with_groups,
)


def check(rows: list[Row], where: str) -> None:
    for row in rows:
        missing = [k for k in REQUIRED if not row.get(k)]
        if missing or row["label"] not in LABELS:
            raise SystemExit(f"{where}: row {row.get('id')!r} lacks {missing} or has a bad label")


def write_jsonl(path: Path, rows: list[Row]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def relabel_devset(path: Path) -> None:
    """Rewrite the dev set with the labels in ``path`` (see the module's docstring)."""
    labels = {r["id"]: r for r in read_jsonl(path)}
    rows = read_jsonl(DEVSET)
    missing = [r["id"] for r in rows if r["id"] not in labels]
    if missing:
        raise SystemExit(f"{path}: no label for dev-set rows {missing[:5]}...")
    kept: list[Row] = []
    changed = dropped = 0
    for row in rows:
        new = labels[row["id"]]
        if new["label"] == "drop":
            dropped += 1
            continue
        if new["label"] not in LABELS:
            raise SystemExit(f"{path}: bad label {new['label']!r} for {row['id']!r}")
        original = row.get("was", row["label"])
        out = {k: v for k, v in row.items() if k not in ("was", "relabel_note")}
        out["label"] = new["label"]
        if new["label"] != original:
            changed += 1
            out["was"] = original
            out["relabel_note"] = new.get("note", "")
        kept.append(out)
    write_jsonl(DEVSET, kept)
    print(f"{DEVSET.name}: {len(kept)} rows kept, {changed} relabelled, {dropped} dropped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train", action="append", default=[], metavar="PREFIX=DIR")
    parser.add_argument("--eval", type=Path, help="the evaluation set to copy (JSONL)")
    parser.add_argument("--relabel-devset", type=Path, metavar="RELABEL.jsonl")
    args = parser.parse_args(argv)

    if args.relabel_devset:
        relabel_devset(args.relabel_devset)
    if args.eval:
        evaluation = read_jsonl(args.eval)
        check(evaluation, str(args.eval))
        write_jsonl(EVAL_SET, evaluation)
    evaluation = [row for path in EVAL_SETS for row in read_jsonl(path)]
    seen = {normalise(r["prompt"]) for r in read_jsonl(DEVSET)}
    ids = {r["id"] for r in evaluation} | {r["id"] for r in read_jsonl(DEVSET)}
    n_overlap = n_repeat = 0
    for spec in args.train:
        prefix, _, folder = spec.partition("=")
        for old in TRAIN_DIR.glob(f"{prefix}-*.jsonl"):
            old.unlink()
        for path in sorted(Path(folder).glob("*.jsonl")):
            rows = read_jsonl(path)
            check(rows, str(path))
            bad = {t for t, _, _ in overlaps([with_groups(r) for r in rows], evaluation)}
            kept = []
            for row in rows:
                key = normalise(row["prompt"])
                if row["id"] in bad:
                    n_overlap += 1
                    print(f"dropped {row['id']}: overlaps the evaluation set")
                elif key in seen:
                    n_repeat += 1
                    print(f"dropped {row['id']}: repeats another training prompt")
                elif row["id"] in ids:
                    raise SystemExit(f"{path}: duplicate id {row['id']!r}")
                else:
                    seen.add(key)
                    ids.add(row["id"])
                    kept.append(row)
            write_jsonl(TRAIN_DIR / f"{prefix}-{path.name}", kept)
            print(f"{path.name}: {len(kept)} of {len(rows)} rows kept")
    print(
        f"dropped {n_overlap} training rows that overlap the evaluation set (word 5-gram "
        f"Jaccard >= {OVERLAP_THRESHOLD}, or the same prompt) and {n_repeat} that repeat "
        "another training prompt"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
