#!/usr/bin/env python3
"""Judge the router's complexity decision on the family-tagged evaluation set, beside baselines.

    python benchmarks/routing_eval.py              # every eval set: this model and the baselines
    python benchmarks/routing_eval.py --cv         # + leave-one-family/source-out on training
    python benchmarks/routing_eval.py --data other.jsonl --out results/routing
    python benchmarks/routing_eval.py --no-second-opinion   # the complexity model alone

Rows need ``prompt`` (or ``messages``, an OpenAI list) and ``label`` (tier_high/tier_low);
``family`` groups the per-family table. For each scorer it prints AUROC, balanced accuracy at
the default threshold (0.5), AUROC within length bands, and AUROC on the part of the set where
length points the wrong way (tier_high prompts under 120 characters against tier_low prompts
over 600); then accuracy per family. "this model" is the router's own score (``RoutingConfig``
defaults, GPU rules off): what the service does with a healthy, idle GPU. Baselines: the
prompt's character count (its balanced point chosen on the training data), the scorer shipped
before this model (``before-i23``) and the 0.1 seed scorer (``seed-0.1``), both rebuilt from
git history (see ``_baselines.py``). ``--cv`` adds the training recipe's cross-validated figures
(``train_scorer.py``: families and sources held out whole) and the baselines' figures on the
training data, per source. The evaluation sets (``data/routing/eval.jsonl``, then
``eval2.jsonl`` to ``eval12.jsonl``, each written later by other writers) are
only ever read here and by ``label_audit.py``, never trained on.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import _baselines
from _metrics import auroc, balanced_accuracy
from _routing_data import EVAL_SETS, label_of, read_jsonl, training_rows
from measure import add_second_opinion_argument

from adaptive_router import AdaptiveRouter, RoutingConfig, load_config

SHORT = 120
LONG = 600
BANDS = ((0, SHORT), (SHORT, LONG), (LONG, 10**9))
FAMILY_FLOOR = 0.85


def prompt_text(row: dict[str, Any]) -> str:
    if "prompt" in row:
        return str(row["prompt"])
    return "\n".join(str(m.get("content", "")) for m in row.get("messages", []))


def safe_auroc(labels: Sequence[float], scores: Sequence[float]) -> float | None:
    if len(set(labels)) < 2:
        return None
    return auroc(labels, scores)


def summary(
    labels: list[float], scores: list[float], lengths: list[int], threshold: float
) -> dict[str, Any]:
    predicted = [s >= threshold for s in scores]
    bands = {}
    for lo, hi in BANDS:
        idx = [i for i, n in enumerate(lengths) if lo <= n < hi]
        auc = safe_auroc([labels[i] for i in idx], [scores[i] for i in idx])
        bands[f"{lo}-{hi if hi < 10**9 else ''}"] = {"n": len(idx), "auroc": auc}
    adverse = [
        i
        for i, (y, n) in enumerate(zip(labels, lengths, strict=True))
        if (y and n < SHORT) or (not y and n > LONG)
    ]
    return {
        "n": len(labels),
        "auroc": auroc(labels, scores),
        "balanced_accuracy": balanced_accuracy(labels, predicted),
        "tier_high_share": sum(predicted) / len(predicted),
        "short_hard_vs_long_easy": {
            "n": len(adverse),
            "auroc": safe_auroc([labels[i] for i in adverse], [scores[i] for i in adverse]),
        },
        "bands": bands,
    }


def best_length_cut(rows: Sequence[dict[str, Any]], candidates: int) -> float:
    """The character count with the best balanced accuracy on ``rows``, tried at about
    ``candidates`` of their distinct lengths."""
    labels = [label_of(r) for r in rows]
    lengths = sorted({len(r["prompt"]) for r in rows})
    best, best_ba = 0.0, -1.0
    for cut in lengths[:: max(1, len(lengths) // candidates)]:
        ba = balanced_accuracy(labels, [len(r["prompt"]) >= cut for r in rows])
        if ba > best_ba:
            best, best_ba = float(cut), ba
    return best


def char_threshold() -> float:
    """The character count with the best balanced accuracy on the training data."""
    return best_length_cut(training_rows(), 400)


def scorers(
    router: AdaptiveRouter, baselines: bool
) -> dict[str, tuple[Callable[[str], float], float]]:
    """name -> (score function, threshold)."""
    out: dict[str, tuple[Callable[[str], float], float]] = {
        "this model": (lambda t: router.decide(t).score, router.config.complexity_threshold)
    }
    if baselines:
        for name in ("before-i23", "seed-0.1"):
            score = _baselines.load(name)
            if score is None:
                print(f"({name}: its commit is not in this clone; left out)")
            else:
                out[name] = (score, 0.5)
        out["characters"] = (lambda t: float(len(t)), char_threshold())
    return out


def fmt(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def print_eval(results: dict[str, dict[str, Any]]) -> None:
    names = list(results)
    first = results[names[0]]
    print(
        "\n| scorer | AUROC | balanced accuracy | tier_high share "
        "| short-hard vs long-easy AUROC | "
        + " | ".join(f"AUROC {b} chars (n={first['bands'][b]['n']})" for b in first["bands"])
        + " |"
    )
    print("|---|---:|---:|---:|---:|" + "---:|" * len(first["bands"]))
    for name in names:
        r = results[name]
        print(
            f"| {name} | {r['auroc']:.3f} | {r['balanced_accuracy']:.3f} | "
            f"{r['tier_high_share']:.3f} | {fmt(r['short_hard_vs_long_easy']['auroc'])} "
            f"(n={r['short_hard_vs_long_easy']['n']}) | "
            + " | ".join(fmt(r["bands"][b]["auroc"]) for b in r["bands"])
            + " |"
        )


def per_family(
    rows: list[dict[str, Any]], all_scores: dict[str, list[float]], thresholds: dict[str, float]
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    families = sorted({str(r.get("family", "-")) for r in rows})
    for family in families:
        idx = [i for i, r in enumerate(rows) if str(r.get("family", "-")) == family]
        out[family] = {"n": len(idx)}
        for name, scores in all_scores.items():
            correct = sum(
                1 for i in idx if (scores[i] >= thresholds[name]) == bool(label_of(rows[i]))
            )
            out[family][name] = correct / len(idx)
    return out


def cross_validation() -> None:
    """The training recipe held out by family and by source, and the baselines per source."""
    import numpy as np
    import train_scorer

    print("\n## Training data, cross-validated (train_scorer.py's recipe and settings)")
    train_scorer.main([])
    rows = training_rows()
    labels = [label_of(r) for r in rows]
    sources = [r["source"] for r in rows]
    print("\nBaselines on the training data (their weights were fitted on the dev set, so on the")
    print("written sources this is out of sample; the character count's balanced point is chosen")
    print("on the other sources):")
    for name in ("before-i23", "seed-0.1", "characters"):
        if name == "characters":
            scores = [float(len(r["prompt"])) for r in rows]
            predicted = []
            for i, source in enumerate(sources):
                predicted.append(scores[i] >= _loso_length_cut(rows, source))
        else:
            score = _baselines.load(name)
            if score is None:
                continue
            scores = [score(r["prompt"]) for r in rows]
            predicted = [s >= 0.5 for s in scores]
        print(
            f"  {name:12s} AUROC {auroc(labels, scores):.4f}  balanced accuracy "
            f"{balanced_accuracy(labels, predicted):.4f}"
        )
        y = np.array(labels)
        for source in sorted(set(sources)):
            idx = [i for i, s in enumerate(sources) if s == source]
            acc = float(np.mean([predicted[i] == bool(y[i]) for i in idx]))
            print(f"      {source:45s} {len(idx):5d} accuracy {acc:.3f}")


_CUTS: dict[str, float] = {}


def _loso_length_cut(rows: list[dict[str, Any]], held_out: str) -> float:
    if held_out not in _CUTS:
        _CUTS[held_out] = best_length_cut([r for r in rows if r["source"] != held_out], 200)
    return _CUTS[held_out]


def evaluate(path: Path, config: RoutingConfig, baselines: bool) -> dict[str, Any]:
    """Print one set's figures, overall and per family; return them."""
    rows = read_jsonl(path)
    labels = [label_of(r) for r in rows]
    texts = [prompt_text(r) for r in rows]
    lengths = [len(t) for t in texts]
    results: dict[str, dict[str, Any]] = {}
    all_scores: dict[str, list[float]] = {}
    thresholds: dict[str, float] = {}
    with AdaptiveRouter(config) as router:
        for name, (score, threshold) in scorers(router, baselines).items():
            queries = (
                [r.get("messages") or r["prompt"] for r in rows] if name == "this model" else texts
            )
            scores = [score(q) for q in queries]
            all_scores[name] = scores
            thresholds[name] = threshold
            results[name] = summary(labels, scores, lengths, threshold)

    print(
        f"{path}: {len(rows)} prompts, {int(sum(labels))} tier_high, "
        f"{len({r.get('family') for r in rows})} families; threshold 0.5 "
        f"(characters: {thresholds.get('characters', 0):.0f})"
    )
    print_eval(results)
    families = per_family(rows, all_scores, thresholds)
    names = list(all_scores)
    print("\nAccuracy per family at the threshold:\n")
    print("| family | n | " + " | ".join(names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    for family, row in families.items():
        print(f"| {family} | {row['n']:.0f} | " + " | ".join(f"{row[n]:.2f}" for n in names) + " |")
    mine = [f for f, row in families.items() if row["this model"] < FAMILY_FLOOR]
    print(
        f"\nfamilies under {FAMILY_FLOOR:.0%} for this model: {len(mine)} of {len(families)}"
        + (f" ({', '.join(mine)})" if mine else "")
    )
    return {"summary": results, "families": families}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, nargs="+", default=list(EVAL_SETS), help="sets to judge (JSONL)"
    )
    parser.add_argument("--config", type=Path, help="router YAML config (default: built-in)")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--cv", action="store_true", help="add the training-data figures")
    parser.add_argument("--out", type=Path, help="directory for routing_eval.json")
    add_second_opinion_argument(parser)
    args = parser.parse_args(argv)

    config = load_config(
        args.config,
        use_env=False,
        gpu_monitor=False,
        second_opinion=None if args.second_opinion else False,
    )
    figures: dict[str, Any] = {}
    for i, path in enumerate(args.data):
        if i:
            print("\n" + "=" * 100 + "\n")
        figures[path.name] = evaluate(path, config, not args.no_baselines)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "routing_eval.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")
        print(f"wrote {args.out / 'routing_eval.json'}")
    if args.cv:
        cross_validation()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
