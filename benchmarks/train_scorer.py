#!/usr/bin/env python3
"""Train the router's complexity model on the training sets, with grouped cross-validation.

    pip install scikit-learn==1.9.1 scipy==1.17.1     # (in requirements-dev.txt)
    python benchmarks/train_scorer.py --out router/adaptive_router/complexity_model.txt

Training data: ``data/routing_devset.jsonl`` and ``data/routing/train/*.jsonl`` (never the
evaluation set, ``data/routing/eval.jsonl``). The model is L2-regularised logistic regression,
classes weighted to balance, over:
- the words and adjacent word pairs of the prompt's window (present or not, scaled by one over
  the square root of their number; those in at least ``--min-df`` training prompts), and, for a
  prompt of ``LONG_CHARS`` (600) characters or more, the same words again as separate columns,
  so a long paste's words get weights of their own on top of the shared ones (family-grouped
  10-fold on the training rows: AUROC 0.9811 -> 0.9830, short-hard vs long-easy 0.970 -> 0.978;
  docs/BENCHMARKS.md, round 3);
- the mean static token embedding (``data/routing/minilm_static.npz``, distilled from
  all-MiniLM-L6-v2) of the window, of its first and of its last tokens;
- the eight hand-written rule dimensions and the prompt's shape (length, lines).
The dense inputs are standardised and scaled by ``--dense-scale`` against the word block.
``--augment SHARE`` (tried in round 19, not shipped: 0 by default) fits on that share of the rows
once more, wrapped in a greeting, thanks, a framing line, quotes or a line of context
(``benchmarks/_surface.py``), with their label. A copy shares its original's family, source and
folds, adds no word or pair of its own and is never scored, so every figure below is over the
rows as written.

Before writing the final model (fitted on all rows) the script reports cross-validated figures
where whole groups are held out: by family (the families dealt into ``--family-folds`` groups,
so every prompt is scored by a model that saw no prompt of its family; one fit per family, 765
of them, would take hours on two cores), leave-one-source-out (a writer or benchmark never
seen), plus stratified 10-fold. Platt scaling, fitted on the family-held-out predictions,
calibrates the final model: its output is a probability and 0.5 the balanced point.
``--search`` compares settings by family-grouped 10-fold cross-validation (training data only).

Reproducible to the byte: the same data and settings write the same file in every run (one
BLAS/OpenMP thread through threadpoolctl, sums in a fixed order whatever the hash seed, fixed
seeds). ``router/tests/test_devset.py`` trains twice under different hash seeds and compares
the bytes; the full check is::

    python benchmarks/train_scorer.py --out /tmp/model.txt
    cmp /tmp/model.txt router/adaptive_router/complexity_model.txt
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one thread: reproducible sums, and a shared machine

import argparse  # noqa: E402
import hashlib  # noqa: E402
from array import array  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from _metrics import auroc, balanced_accuracy  # noqa: E402
from _routing_data import ROOT, Row, label_of, training_rows  # noqa: E402
from _surface import SHARE, wrapped_copies  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from adaptive_router.features import (  # noqa: E402
    DIMENSIONS,
    SHAPE,
    extract,
    read_prompt,
    segments,
    word_grams,
)
from adaptive_router.model import SEGMENTS, ComplexityModel  # noqa: E402
from adaptive_router.wordpiece import WordPiece  # noqa: E402

STATIC = ROOT / "data" / "routing" / "minilm_static.npz"
LONG_MARK = "\t"
"""Marks a long prompt's own word columns (a tab never occurs inside a word)."""
DEFAULT_OUT = ROOT / "router" / "adaptive_router" / "complexity_model.txt"


def load_static(path: Path = STATIC) -> tuple[np.ndarray, list[str]]:
    with np.load(path) as z:
        vectors = z["vectors"].astype(np.float64) * z["scale"].astype(np.float64)
        vocab = [str(t) for t in z["vocab"]]
    return vectors, vocab


@dataclass
class Inputs:
    """Everything the model reads, for a list of prompts."""

    grams: list[list[str]]
    """Per prompt: its words and pairs, then (a long prompt) the same marked ``LONG_MARK``."""
    gram_scale: np.ndarray
    """1 / sqrt(number of distinct words and pairs) per prompt."""
    dense: np.ndarray
    """Per prompt: dimensions, shape, then the mean embedding of each segment."""
    originals: int
    """The first ``originals`` prompts are training rows as written; any after them are wrapped
    copies (``benchmarks/_surface.py``), which add no word or pair of their own to a fit."""


def read_inputs(
    prompts: Sequence[str],
    vectors: np.ndarray,
    tokenizer: WordPiece,
    copies: Sequence[str] = (),
) -> Inputs:
    """The inputs of ``prompts``, then of ``copies`` (wrapped copies, fitted on only)."""
    originals = len(prompts)
    prompts = [*prompts, *copies]
    dim = vectors.shape[1]
    grams: list[list[str]] = []
    scale = np.zeros(len(prompts))
    dense = np.zeros((len(prompts), len(DIMENSIONS) + len(SHAPE) + len(SEGMENTS) * dim))
    for row, text in enumerate(prompts):
        prompt = read_prompt(text, tokenizer)
        found = word_grams(prompt.words)
        mine = sorted(found)
        if prompt.long:
            mine += [LONG_MARK + g for g in mine]
        grams.append(mine)
        scale[row] = 1.0 / np.sqrt(len(found)) if found else 0.0
        parts = [np.array(extract(text).dimensions), np.array(prompt.shape)]
        for ids in segments(prompt.ids):
            parts.append(vectors[ids].mean(axis=0) if ids else np.zeros(dim))
        dense[row] = np.concatenate(parts)
    return Inputs(grams=grams, gram_scale=scale, dense=dense, originals=originals)


SEED = 7
"""The stratified folds' and the wrapped copies' seed (``--seed``)."""


@dataclass
class Fitted:
    """A fitted model in the terms of its inputs (before folding into a ComplexityModel)."""

    vocab: list[str]
    gram_w: np.ndarray
    dense_w: np.ndarray
    """Weights on the raw dense inputs (standardisation folded in)."""
    bias: float

    def decision(self, inputs: Inputs, rows: np.ndarray) -> np.ndarray:
        index = {g: i for i, g in enumerate(self.vocab)}
        out = inputs.dense[rows] @ self.dense_w + self.bias
        for k, r in enumerate(rows):
            total = sum(self.gram_w[index[g]] for g in inputs.grams[r] if g in index)
            out[k] += total * inputs.gram_scale[r]
        result: np.ndarray = out
        return result


@dataclass(frozen=True)
class Recipe:
    """The settings of one fit (chosen by family-grouped cross-validation on training data)."""

    c: float = 30.0
    """Inverse L2 strength."""
    dense_scale: float = 0.03
    """The standardised dense inputs' scale against the word columns."""
    min_df: int = 2
    """A word or pair must occur in this many training prompts to get a weight."""
    nb_alpha: float = 1.0
    """Smoothing of the log-count ratios that scale the word columns (0: unscaled)."""

    def describe(self) -> str:
        return (
            f"C={self.c}, dense_scale={self.dense_scale}, min_df={self.min_df}, "
            f"nb_alpha={self.nb_alpha}"
        )


def log_count_ratios(presence: Any, y: np.ndarray, alpha: float) -> np.ndarray:
    """Per word or pair: log of how much likelier it is in a tier_high prompt than in a
    tier_low one (smoothed by ``alpha``): NBSVM's scaling (Wang & Manning, 2012, "Baselines and
    Bigrams"). Scaling each column by it before the regression lets a word's evidence in the
    class counts set its starting strength, which the L2 penalty then only refines."""
    high = np.asarray(presence[y == 1].sum(axis=0)).ravel() + alpha
    low = np.asarray(presence[y == 0].sum(axis=0)).ravel() + alpha
    ratios: np.ndarray = np.log((high / high.sum()) / (low / low.sum()))
    return ratios


def fit(inputs: Inputs, y: np.ndarray, rows: np.ndarray, recipe: Recipe) -> Fitted:
    """Logistic regression on ``rows`` (L2, classes balanced, lbfgs: deterministic), the word
    columns scaled by their log-count ratios."""
    c, dense_scale, min_df, nb_alpha = recipe.c, recipe.dense_scale, recipe.min_df, recipe.nb_alpha
    from scipy.sparse import csr_matrix, diags, hstack
    from sklearn.linear_model import LogisticRegression

    df: dict[str, int] = {}
    for r in rows:
        if r < inputs.originals:  # a copy's wrapper makes pairs no prompt has: no new columns
            for g in inputs.grams[r]:
                df[g] = df.get(g, 0) + 1
    vocab = sorted(g for g, n in df.items() if n >= min_df)
    index = {g: i for i, g in enumerate(vocab)}
    indptr, cols, vals = [0], [], []
    for r in rows:
        mine = [index[g] for g in inputs.grams[r] if g in index]
        cols.extend(mine)
        vals.extend([inputs.gram_scale[r]] * len(mine))
        indptr.append(len(cols))
    sparse = csr_matrix((vals, cols, indptr), shape=(len(rows), len(vocab)))
    ratios = np.ones(len(vocab))
    if nb_alpha > 0:
        ratios = log_count_ratios((sparse > 0).astype(np.float64), y[rows], nb_alpha)
        sparse = sparse @ diags(ratios)
    dense = inputs.dense[rows]
    mean = dense.mean(axis=0)
    std = dense.std(axis=0) + 1e-9
    scaled = (dense - mean) / std * dense_scale
    x = hstack([sparse, csr_matrix(scaled)]).tocsr()
    model = LogisticRegression(C=c, class_weight="balanced", solver="lbfgs", max_iter=5000)
    model.fit(x, y[rows])
    w = model.coef_[0]
    dense_w = w[len(vocab) :] * dense_scale / std
    bias = float(model.intercept_[0] - dense_w @ mean)
    return Fitted(vocab=vocab, gram_w=w[: len(vocab)] * ratios, dense_w=dense_w, bias=bias)


_SHARED: tuple[Inputs, np.ndarray, np.ndarray, Recipe] | None = None  # for forked workers


def _held_out(group: str) -> tuple[np.ndarray, np.ndarray]:
    assert _SHARED is not None
    inputs, y, labels, recipe = _SHARED
    held = np.flatnonzero(labels == group)
    kept = np.flatnonzero(labels != group)
    return held, fit(inputs, y, kept, recipe).decision(inputs, held)


def out_of_group(
    inputs: Inputs,
    y: np.ndarray,
    groups: Sequence[str],
    recipe: Recipe,
    jobs: int = 1,
) -> np.ndarray:
    """Decision values for each row from a model fitted without its group. With ``jobs`` > 1
    the groups are fitted in forked processes: each fit is the same whatever runs it, so the
    figures (and the model) are the same bytes as with one process."""
    global _SHARED
    out = np.zeros(len(y))
    _SHARED = (inputs, y, np.array(groups), recipe)
    try:
        ordered = sorted(set(groups))
        if jobs > 1:
            import multiprocessing

            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                results = pool.map(_held_out, ordered, chunksize=1)
        else:
            results = [_held_out(g) for g in ordered]
    finally:
        _SHARED = None
    for held, values in results:
        out[held] = values
    return out


def family_folds(families: Sequence[str], k: int) -> list[str]:
    """Families dealt round-robin (sorted) into ``k`` groups: grouped k-fold, deterministic."""
    order = {f: i % k for i, f in enumerate(sorted(set(families)))}
    return [f"fold{order[f]}" for f in families]


def stratified_folds(y: np.ndarray, k: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(y), dtype=int)
    for label in (0, 1):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        fold[idx] = np.arange(len(idx)) % k
    return [f"fold{f}" for f in fold]


def platt(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(a, b) so that sigmoid(a * score + b) is calibrated; classes weighted to balance, so
    0.5 stays the balanced point."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1e6, class_weight="balanced", solver="lbfgs")
    model.fit(scores.reshape(-1, 1), y)
    return float(model.coef_[0][0]), float(model.intercept_[0])


def to_model(
    fitted: Fitted, vectors: np.ndarray, vocab: list[str], a: float, b: float, header: list[str]
) -> ComplexityModel:
    """Fold calibration and the embedding projection into a ComplexityModel."""
    n_dims, n_shape = len(DIMENSIONS), len(SHAPE)
    dense_w = fitted.dense_w * a
    dim = vectors.shape[1]
    tables = []
    for s in range(len(SEGMENTS)):
        start = n_dims + n_shape + s * dim
        projected = vectors @ dense_w[start : start + dim]
        tables.append(array("d", (round(float(v), 5) for v in projected)))
    grams: dict[str, float] = {}
    long_grams: dict[str, float] = {}
    for g, w in zip(fitted.vocab, fitted.gram_w, strict=True):
        if abs(w * a) >= 5e-5:
            if g.startswith(LONG_MARK):
                long_grams[g[len(LONG_MARK) :]] = round(float(w * a), 5)
            else:
                grams[g] = round(float(w * a), 5)
    return ComplexityModel(
        bias=round(fitted.bias * a + b, 6),
        dim_weights=tuple(round(float(v), 6) for v in dense_w[:n_dims]),
        shape_weights=tuple(round(float(v), 6) for v in dense_w[n_dims : n_dims + n_shape]),
        gram_weights=grams,
        long_gram_weights=long_grams,
        vocabulary=tuple(vocab),
        token_weights=tuple(tables),
        header=tuple(header),
    )


def figures(y: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(AUROC, balanced accuracy at the balanced point 0) of decision values."""
    return auroc(list(y), list(scores)), balanced_accuracy(list(y), list(scores >= 0))


def per_group(
    y: np.ndarray, scores: np.ndarray, groups: Sequence[str]
) -> list[tuple[str, int, float]]:
    """(group, rows, accuracy at the balanced point) per group."""
    out = []
    labels = np.array(groups)
    for g in sorted(set(groups)):
        idx = labels == g
        out.append((g, int(idx.sum()), float(np.mean((scores[idx] >= 0) == (y[idx] == 1)))))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, help="where to write the model (default: report only)")
    defaults = Recipe()
    parser.add_argument("--c", type=float, default=defaults.c, help="inverse L2 strength")
    parser.add_argument("--dense-scale", type=float, default=defaults.dense_scale)
    parser.add_argument("--min-df", type=int, default=defaults.min_df)
    parser.add_argument(
        "--nb-alpha", type=float, default=defaults.nb_alpha,
        help="smoothing of the word columns' log-count ratios (0: no scaling)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=SEED, help="folds and wrapped copies")
    parser.add_argument(
        "--augment", type=float, default=SHARE, metavar="SHARE",
        help="share of rows fitted on once more in a neutral wrapper (benchmarks/_surface.py; "
        "0: none)",
    )  # fmt: skip
    parser.add_argument("--family-folds", type=int, default=20, metavar="K")
    parser.add_argument(
        "--every", type=int, default=1, metavar="N", help="train on every Nth row (for tests)"
    )
    parser.add_argument("--search", action="store_true", help="compare settings first")
    parser.add_argument("--quick", action="store_true", help="grouped 10-fold only (no LOFO)")
    parser.add_argument(
        "--jobs", type=int, default=1, metavar="N",
        help="fit the held-out models in N processes (same results; N x the memory)",
    )  # fmt: skip
    parser.add_argument("--stats", action="store_true", help="print the training rows and exit")
    args = parser.parse_args(argv)
    with threadpool_limits(limits=1):  # one thread: the same sums in every run
        return run(args)


def run(args: argparse.Namespace) -> int:
    rows: list[Row] = training_rows()[:: args.every]
    y = np.array([label_of(r) for r in rows])
    families = [r["family"] for r in rows]
    sources = [r["source"] for r in rows]
    print(
        f"training rows: {len(rows)} ({int(y.sum())} tier_high), "
        f"{len(set(families))} families, {len(set(sources))} sources"
    )
    if args.stats:
        for g, n, _ in per_group(y, y * 2 - 1, sources):
            print(f"  {g:45s} {n:5d}")
        return 0
    vectors, vocab = load_static()
    prompts = [r["prompt"] for r in rows]
    # Wrapped copies (benchmarks/_surface.py) are only ever fitted on: each shares its
    # original's family, source and fold, so no held-out figure scores a copy of a prompt its
    # model saw, and every figure below is over the original rows alone.
    copies = wrapped_copies(prompts, args.seed, args.augment)
    origin = np.array([i for i, _ in copies], dtype=int)
    print(f"wrapped copies fitted on too: {len(copies)} (--augment {args.augment})")
    n_rows = len(rows)
    inputs = read_inputs(
        prompts,
        vectors,
        WordPiece(dict(zip(vocab, range(len(vocab)), strict=True))),
        copies=[text for _, text in copies],
    )
    y_fit = np.concatenate([y, y[origin]])
    everything = np.arange(len(y_fit))
    recipe = Recipe(args.c, args.dense_scale, args.min_df, args.nb_alpha)

    def held_out(groups: Sequence[str], tried: Recipe = recipe) -> np.ndarray:
        """Decision values of the original rows, each from a fit without its group."""
        extended = list(groups) + [groups[i] for i in origin]
        return out_of_group(inputs, y_fit, extended, tried, args.jobs)[:n_rows]

    grouped10 = family_folds(families, 10)
    if args.search:
        for nb_alpha in (0.0, 1.0):
            for c in (3.0, 10.0, 30.0, 100.0):
                tried = Recipe(c, args.dense_scale, args.min_df, nb_alpha)
                auc, ba = figures(y, held_out(grouped10, tried))
                print(f"{tried.describe()}: family 10-fold AUROC={auc:.4f} BA={ba:.4f}")

    header = [
        "gemma4-adaptive-router complexity model (calibrated logistic regression).",
        f"Written by benchmarks/train_scorer.py on {len(rows)} training rows "
        f"({len(set(families))} families, {len(set(sources))} sources"
        + (f"; {len(copies)} wrapped copies" if copies else "")
        + f"): {recipe.describe()}.",
        "Token weights derive from all-MiniLM-L6-v2 (Apache-2.0) static embeddings.",
    ]
    if args.quick:
        calibration_scores = held_out(grouped10)
        auc, ba = figures(y, calibration_scores)
        print(f"family-grouped 10-fold: AUROC {auc:.4f}, balanced accuracy {ba:.4f}")
        header.append(f"Family-grouped 10-fold: AUROC {auc:.4f}, balanced accuracy {ba:.4f}.")
    else:
        lofo = held_out(family_folds(families, args.family_folds))
        loso = held_out(sources)
        strat = held_out(stratified_folds(y, 10, args.seed))
        for name, s in (
            (f"held out by family ({args.family_folds} groups of families)", lofo),
            ("leave-one-source-out", loso),
            ("stratified 10-fold", strat),
        ):
            auc, ba = figures(y, s)
            print(f"{name}: AUROC {auc:.4f}, balanced accuracy {ba:.4f}")
            header.append(f"{name}: AUROC {auc:.4f}, balanced accuracy {ba:.4f}.")
        print("leave-one-source-out, accuracy per held-out source:")
        for g, n, acc in per_group(y, loso, sources):
            print(f"  {g:45s} {n:5d} {acc:.3f}")
        worst = sorted(per_group(y, lofo, families), key=lambda t: t[2])[:10]
        print("held out by family, the 10 hardest families:")
        for g, n, acc in worst:
            print(f"  {g:45s} {n:5d} {acc:.3f}")
        calibration_scores = lofo

    a, b = platt(calibration_scores, y)
    print(f"Platt calibration on family-held-out predictions: a={a:.4f} b={b:.4f}")
    fitted = fit(inputs, y_fit, everything, recipe)
    digest = hashlib.sha256(fitted.gram_w.tobytes() + fitted.dense_w.tobytes()).hexdigest()
    print(f"fitted weights (before rounding): sha256 {digest}")
    model = to_model(fitted, vectors, vocab, a, b, header)
    if args.out:
        args.out.write_text(model.dump(), encoding="utf-8")
        print(
            f"wrote {args.out} ({args.out.stat().st_size} bytes, "
            f"{len(model.gram_weights)} words and pairs, "
            f"{len(model.long_gram_weights)} long-prompt weights)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
