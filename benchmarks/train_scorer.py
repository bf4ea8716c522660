#!/usr/bin/env python3
"""Train the router's complexity model from a labelled JSONL set, with cross-validation.

    python benchmarks/train_scorer.py --data data/routing_devset.jsonl \
        --out router/adaptive_router/complexity_model.txt

The model is L2-regularised logistic regression over the eight rule dimensions and the
presence of words (words seen in at least ``--min-df`` prompts). It is fitted with Newton's
method in numpy, so training needs no other library. Before writing the final model (fitted on
all rows) the script reports stratified k-fold and leave-one-source-out cross-validated AUROC
and balanced accuracy at the default threshold: those are the numbers to quote, not the fit on
the training rows.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np
from _metrics import auroc, balanced_accuracy

from adaptive_router.features import DIMENSIONS, Features, extract
from adaptive_router.model import LinearModel

ROOT = Path(__file__).resolve().parents[1]


def load_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def vocabulary(feats: list[Features], min_df: int) -> list[bytes]:
    df: Counter[bytes] = Counter()
    for f in feats:
        df.update(f.words)
    return sorted(w for w, n in df.items() if n >= min_df and len(w) > 1 and not w.isdigit())


def matrix(feats: list[Features], vocab: list[bytes]) -> np.ndarray:
    index = {w: i for i, w in enumerate(vocab)}
    x = np.zeros((len(feats), len(DIMENSIONS) + len(vocab)))
    for row, f in enumerate(feats):
        x[row, : len(DIMENSIONS)] = f.dimensions
        for w in f.words:
            col = index.get(w)
            if col is not None:
                x[row, len(DIMENSIONS) + col] = 1.0
    return x


# What the dimensions mean, as starting weights: the dev set is 693 English prompts, so a
# dimension it rarely exercises (proofs, German wording) keeps the weight its meaning gives it
# instead of drifting to zero. Training pulls each dimension weight towards its prior, and each
# word weight towards zero.
DIMENSION_PRIORS: dict[str, float] = {
    "math": 4.0,
    "code": 4.0,
    "reasoning": 4.0,
    "constraints": 2.0,
    "length": 2.0,
    "entities": 0.0,
    "negation": 0.5,
    "simple": -3.0,
}


def fit_logistic(
    x: np.ndarray, y: np.ndarray, l2_dims: float, l2_words: float, iterations: int = 30
) -> tuple[float, np.ndarray]:
    """Newton's method on the penalised log-likelihood; the bias is not penalised."""
    n, d = x.shape
    xb = np.hstack([np.ones((n, 1)), x])
    penalty = np.full(d + 1, l2_words)
    penalty[0] = 0.0
    penalty[1 : 1 + len(DIMENSIONS)] = l2_dims
    prior = np.zeros(d + 1)
    prior[1 : 1 + len(DIMENSIONS)] = [DIMENSION_PRIORS[name] for name in DIMENSIONS]
    w = prior.copy()

    def loss(v: np.ndarray) -> float:
        z = xb @ v
        return float(
            np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(penalty * (v - prior) ** 2)
        )

    current = loss(w)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w, -30, 30)))
        grad = xb.T @ (p - y) + penalty * (w - prior)
        hess = (xb.T * (p * (1 - p))) @ xb + np.diag(penalty + 1e-6)
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-4:  # backtracking: a full Newton step can overshoot far from the optimum
            candidate = w - scale * step
            value = loss(candidate)
            if value <= current:
                break
            scale /= 2
        w, current = candidate, value
        if np.max(np.abs(scale * step)) < 1e-7:
            break
    return float(w[0]), w[1:]


def train(
    feats: list[Features], y: np.ndarray, min_df: int, l2_dims: float, l2_words: float
) -> LinearModel:
    vocab = vocabulary(feats, min_df)
    bias, w = fit_logistic(matrix(feats, vocab), y, l2_dims, l2_words)
    dims = tuple(float(v) for v in w[: len(DIMENSIONS)])
    words = {
        word: float(v)
        for word, v in zip(vocab, w[len(DIMENSIONS) :], strict=True)
        if abs(v) >= 1e-3
    }
    return LinearModel(bias=bias, dim_weights=dims, word_weights=words)


def stratified_folds(y: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    for label in (0, 1):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        for i, j in enumerate(idx):
            folds[i % k].append(int(j))
    return [np.array(sorted(f)) for f in folds]


def cross_validate(
    feats: list[Features],
    y: np.ndarray,
    folds: list[np.ndarray],
    min_df: int,
    l2_dims: float,
    l2_words: float,
) -> np.ndarray:
    """Out-of-fold probabilities for every row."""
    out = np.zeros(len(y))
    for test in folds:
        mask = np.ones(len(y), dtype=bool)
        mask[test] = False
        train_idx = np.flatnonzero(mask)
        model = train([feats[i] for i in train_idx], y[train_idx], min_df, l2_dims, l2_words)
        for i in test:
            out[i] = model.probability(feats[i])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "routing_devset.jsonl")
    parser.add_argument("--out", type=Path, help="where to write the model (default: print only)")
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--min-df", type=int, default=3)
    parser.add_argument("--l2-dims", type=float, default=10.0)
    parser.add_argument("--l2-words", type=float, default=3.0)
    parser.add_argument("--threshold", type=float, default=0.5, help="decision threshold reported")
    parser.add_argument("--search", action="store_true", help="grid-search the L2 strengths first")
    args = parser.parse_args(argv)

    rows = load_rows(args.data)
    feats = [extract(r["prompt"]) for r in rows]
    y = np.array([1.0 if r["label"] == "tier_high" else 0.0 for r in rows])
    sources = [r.get("source", "").split(":")[0] for r in rows]
    folds = stratified_folds(y, args.folds, args.seed)

    if args.search:
        for l2d in (1.0, 3.0, 10.0, 30.0):
            for l2w in (1.0, 3.0, 10.0):
                p = cross_validate(feats, y, folds, args.min_df, l2d, l2w)
                print(
                    f"l2_dims={l2d:<5} l2_words={l2w:<5} AUROC={auroc(y, p):.4f} "
                    f"BA@{args.threshold}={balanced_accuracy(y, p >= args.threshold):.4f}"
                )

    p = cross_validate(feats, y, folds, args.min_df, args.l2_dims, args.l2_words)
    cv_auc, cv_ba = auroc(y, p), balanced_accuracy(y, p >= args.threshold)
    print(
        f"{args.folds}-fold CV: AUROC={cv_auc:.4f} balanced accuracy@{args.threshold}={cv_ba:.4f}"
    )

    groups = sorted(set(sources))
    lo = np.zeros(len(y))
    for g in groups:
        test = np.array([i for i, s in enumerate(sources) if s == g])
        lo_model = train(
            [feats[i] for i in range(len(y)) if sources[i] != g],
            y[np.array([s != g for s in sources])],
            args.min_df,
            args.l2_dims,
            args.l2_words,
        )
        for i in test:
            lo[i] = lo_model.probability(feats[i])
    lo_auc, lo_ba = auroc(y, lo), balanced_accuracy(y, lo >= args.threshold)
    print(
        f"leave-one-source-out ({len(groups)} sources): "
        f"AUROC={lo_auc:.4f} balanced accuracy={lo_ba:.4f}"
    )

    model = train(feats, y, args.min_df, args.l2_dims, args.l2_words)
    fit = np.array([model.probability(f) for f in feats])
    print(
        f"fit on all rows (optimistic): AUROC={auroc(y, fit):.4f} "
        f"balanced accuracy={balanced_accuracy(y, fit >= args.threshold):.4f}"
    )
    print(f"{len(model.word_weights)} word weights")

    if args.out:
        model = LinearModel(
            bias=model.bias,
            dim_weights=model.dim_weights,
            word_weights=model.word_weights,
            header=(
                "gemma4-adaptive-router complexity model (logistic regression).",
                (
                    f"Trained {date.today().isoformat()} by benchmarks/train_scorer.py on "
                    f"{args.data.name} ({len(rows)} rows), min_df={args.min_df}, "
                    f"l2_dims={args.l2_dims}, l2_words={args.l2_words}."
                ),
                f"{args.folds}-fold CV: AUROC {cv_auc:.4f}, "
                f"balanced accuracy {cv_ba:.4f} at {args.threshold}.",
                f"Leave-one-source-out: AUROC {lo_auc:.4f}, balanced accuracy {lo_ba:.4f}.",
            ),
        )
        args.out.write_text(model.dump(), encoding="utf-8")
        print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
