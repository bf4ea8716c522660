"""The routing data: where each set lives, how rows are read, and the train/eval overlap check.

Training sources (never an evaluation set):
- ``data/routing_devset.jsonl``: 693 prompts from public benchmarks (its ``category`` is its
  family, the repository before the ``:`` of its ``source`` is its source);
- ``data/routing/train/*.jsonl``: prompts written by family for this repository.

Evaluation: ``data/routing/eval.jsonl`` and ``eval2.jsonl`` to ``eval12.jsonl`` (family-tagged,
written independently of the training prompts and of each other; read to report, never to
train; ``eval5.jsonl`` to ``eval12.jsonl`` were each read once to decide between two
candidates fixed beforehand, ``eval11.jsonl`` and ``eval12.jsonl`` for the same one,
data/README.md).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEVSET = ROOT / "data" / "routing_devset.jsonl"
TRAIN_DIR = ROOT / "data" / "routing" / "train"
EVAL_SET = ROOT / "data" / "routing" / "eval.jsonl"
EVAL_SET_2 = ROOT / "data" / "routing" / "eval2.jsonl"
"""A second family-tagged set, written later by two other writers (data/README.md)."""
EVAL_SET_3 = ROOT / "data" / "routing" / "eval3.jsonl"
"""A third, written on 2026-12-06 by five more writers and audited blind before its one read."""
EVAL_SET_4 = ROOT / "data" / "routing" / "eval4.jsonl"
"""A fourth, written on 2026-12-06 by two more writers (half of it in fourteen languages other
than English), audited blind before its one read, for round 11 (data/README.md)."""
# eval5.jsonl to eval12.jsonl: each written on 2026-12-07 by five more writers (twelve of its 42
# families in languages other than English) and audited blind before its one read
# (data/README.md).
EVAL_SET_5 = ROOT / "data" / "routing" / "eval5.jsonl"
EVAL_SET_6 = ROOT / "data" / "routing" / "eval6.jsonl"
EVAL_SET_7 = ROOT / "data" / "routing" / "eval7.jsonl"
EVAL_SET_8 = ROOT / "data" / "routing" / "eval8.jsonl"
EVAL_SET_9 = ROOT / "data" / "routing" / "eval9.jsonl"
EVAL_SET_10 = ROOT / "data" / "routing" / "eval10.jsonl"
EVAL_SET_11 = ROOT / "data" / "routing" / "eval11.jsonl"
EVAL_SET_12 = ROOT / "data" / "routing" / "eval12.jsonl"
EVAL_SETS = (
    EVAL_SET,
    EVAL_SET_2,
    EVAL_SET_3,
    EVAL_SET_4,
    EVAL_SET_5,
    EVAL_SET_6,
    EVAL_SET_7,
    EVAL_SET_8,
    EVAL_SET_9,
    EVAL_SET_10,
    EVAL_SET_11,
    EVAL_SET_12,
)
EVAL_AUDIT = ROOT / "data" / "routing" / "eval-audit.jsonl"
"""Two blind labellers' labels for every prompt of every set (benchmarks/label_audit.py)."""
LABELS = ("tier_low", "tier_high")
REQUIRED = ("id", "prompt", "label", "family", "source", "license")
OVERLAP_THRESHOLD = 0.3
"""Word 5-gram Jaccard from which two prompts count as near-duplicates (a shared pasted
document with another ask is one)."""

Row = dict[str, Any]


def read_jsonl(path: Path) -> list[Row]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def with_groups(row: Row) -> Row:
    """The row with ``family`` and ``source`` as the cross-validation groups use them.

    Dev-set rows have no family: their ``category`` stands in (``devset/<category>``), and
    their source is the repository part of ``owner/repo:path``.
    """
    out = dict(row)
    if "family" not in out:  # a dev-set row
        out["family"] = "devset/" + str(out.get("category", "-")).split("/")[0]
        out["source"] = str(out.get("source", "-")).split(":")[0]
    return out


def training_files(train_dir: Path = TRAIN_DIR, devset: Path = DEVSET) -> list[Path]:
    return [devset, *sorted(train_dir.glob("*.jsonl"))]


def training_rows(files: Iterable[Path] | None = None) -> list[Row]:
    rows: list[Row] = []
    for path in files if files is not None else training_files():
        rows.extend(with_groups(r) for r in read_jsonl(path))
    return rows


def label_of(row: Row) -> float:
    return 1.0 if row["label"] == "tier_high" else 0.0


# -- overlap between training and evaluation prompts ---------------------------------------

_WORD = re.compile(r"\w+")


def normalise(text: str) -> str:
    """Lower case, words only, single spaces: two prompts equal here are the same prompt."""
    return " ".join(_WORD.findall(text.lower()))


def shingles(text: str, n: int = 5) -> frozenset[str]:
    words = normalise(text).split()
    if len(words) < n:
        return frozenset([" ".join(words)]) if words else frozenset()
    return frozenset(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def overlaps(
    train: list[Row], evaluation: list[Row], threshold: float = OVERLAP_THRESHOLD, n: int = 5
) -> list[tuple[str, str, float]]:
    """(train id, eval id, similarity) for every pair that is the same prompt after
    :func:`normalise`, or whose word ``n``-gram sets have a Jaccard index >= ``threshold``.
    An inverted index on the n-grams keeps this to the pairs that share one."""
    found: list[tuple[str, str, float]] = []
    exact: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(evaluation):
        exact[normalise(r["prompt"])].append(i)
    index: dict[str, list[int]] = defaultdict(list)
    eval_sets = [shingles(r["prompt"], n) for r in evaluation]
    for i, s in enumerate(eval_sets):
        for gram in s:
            index[gram].append(i)
    for row in train:
        # Every pair: a prompt the same as one evaluation prompt may still be near another.
        same = exact.get(normalise(row["prompt"]), [])
        found.extend((row["id"], evaluation[i]["id"], 1.0) for i in same)
        mine = shingles(row["prompt"], n)
        candidates = {i for gram in mine for i in index.get(gram, ())} - set(same)
        for i in sorted(candidates):
            similarity = jaccard(mine, eval_sets[i])
            if similarity >= threshold:
                found.append((row["id"], evaluation[i]["id"], round(similarity, 3)))
    return found
