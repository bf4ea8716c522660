#!/usr/bin/env python3
"""Evaluate the router's complexity decision on a labelled JSONL set.

    python benchmarks/routing_eval.py --data data/routing_devset.jsonl --out results/routing

Each line needs ``prompt`` (a string, or ``messages`` as an OpenAI list) and ``label``
(``tier_high`` / ``tier_low``); ``category`` is used for the per-category error table when
present. Reports AUROC, balanced accuracy, the confusion matrix at the configured threshold, a
threshold sweep, the worst errors; writes ``routing_eval.json`` and (with matplotlib installed)
``roc.png`` into ``--out``. The score is the router's own (``RoutingConfig`` from ``--config``,
GPU rules off), so what this prints is what the service does with a healthy, idle GPU.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from _metrics import auroc, balanced_accuracy, confusion

from adaptive_router import AdaptiveRouter, load_config

ROOT = Path(__file__).resolve().parents[1]


def roc_points(labels: list[float], scores: list[float]) -> list[tuple[float, float]]:
    pos = sum(labels) or 1.0
    neg = (len(labels) - sum(labels)) or 1.0
    points = [(0.0, 0.0)]
    tp = fp = 0.0
    for _, label in sorted(zip(scores, labels, strict=True), key=lambda p: -p[0]):
        if label:
            tp += 1
        else:
            fp += 1
        points.append((fp / neg, tp / pos))
    return points


def evaluate(
    rows: list[dict[str, Any]], router: AdaptiveRouter, threshold: float
) -> dict[str, Any]:
    labels: list[float] = []
    scores: list[float] = []
    categories: list[str] = []
    for row in rows:
        query = row.get("messages") or row["prompt"]
        scores.append(router.decide(query).score)
        labels.append(1.0 if row["label"] == "tier_high" else 0.0)
        categories.append(str(row.get("category", "")).split("/")[0] or "-")
    predicted = [s >= threshold for s in scores]
    errors: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for cat, y, p in zip(categories, labels, predicted, strict=True):
        key = f"{cat} ({'tier_high' if y else 'tier_low'})"
        totals[key] += 1
        errors[key] += int(bool(y) != p)
    sweep = [
        {
            "threshold": t / 20,
            "balanced_accuracy": round(balanced_accuracy(labels, [s >= t / 20 for s in scores]), 4),
            "tier_high_share": round(sum(s >= t / 20 for s in scores) / len(scores), 4),
        }
        for t in range(1, 20)
    ]
    worst = sorted(
        (
            {
                "id": row.get("id"),
                "label": row["label"],
                "score": round(s, 4),
                "prompt": (row.get("prompt") or json.dumps(row.get("messages")))[:160],
            }
            for row, s, y, p in zip(rows, scores, labels, predicted, strict=True)
            if bool(y) != p
        ),
        key=lambda e: -abs(float(e["score"]) - threshold),
    )
    return {
        "n": len(rows),
        "threshold": threshold,
        "auroc": round(auroc(labels, scores), 4),
        "balanced_accuracy": round(balanced_accuracy(labels, predicted), 4),
        "tier_high_share": round(sum(predicted) / len(predicted), 4),
        "confusion": confusion(labels, predicted),
        "per_category_errors": {k: f"{errors[k]}/{totals[k]}" for k in sorted(totals) if errors[k]},
        "sweep": sweep,
        "worst_errors": worst[:15],
        "roc": roc_points(labels, scores),
    }


def plot_roc(result: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    xs, ys = zip(*result["roc"], strict=True)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(xs, ys, label=f"router (AUROC {result['auroc']:.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set_xlabel("false positive rate (easy sent to tier_high)")
    ax.set_ylabel("true positive rate (hard sent to tier_high)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "routing_devset.jsonl")
    parser.add_argument(
        "--config", type=Path, help="router YAML config (default: built-in defaults)"
    )
    parser.add_argument("--threshold", type=float, help="override complexity_threshold")
    parser.add_argument("--out", type=Path, help="directory for routing_eval.json and roc.png")
    args = parser.parse_args(argv)

    overrides: dict[str, Any] = {"gpu_monitor": False}
    if args.threshold is not None:
        overrides["complexity_threshold"] = args.threshold
    config = load_config(args.config, use_env=False, **overrides)
    with args.data.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    with AdaptiveRouter(config) as router:
        result = evaluate(rows, router, config.complexity_threshold)

    c = result["confusion"]
    print(f"rows: {result['n']}   threshold: {result['threshold']}")
    print(
        f"AUROC: {result['auroc']:.4f}   balanced accuracy: {result['balanced_accuracy']:.4f}   "
        f"tier_high share: {result['tier_high_share']:.3f}"
    )
    print("confusion (rows = label, columns = routed to):")
    print("                  tier_high  tier_low")
    print(f"  tier_high      {c['tp']:9d} {c['fn']:9d}")
    print(f"  tier_low       {c['fp']:9d} {c['tn']:9d}")
    print("errors by category:")
    for key, value in result["per_category_errors"].items():
        print(f"  {key:45s} {value}")
    print("threshold sweep (threshold, balanced accuracy, tier_high share):")
    for point in result["sweep"]:
        print(
            f"  {point['threshold']:.2f}  {point['balanced_accuracy']:.4f}  "
            f"{point['tier_high_share']:.3f}"
        )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "routing_eval.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
        plotted = plot_roc(result, args.out / "roc.png")
        print(
            f"wrote {args.out / 'routing_eval.json'}"
            + (f" and {args.out / 'roc.png'}" if plotted else "")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
