"""The dev-set evaluation as a test: the shipped model and defaults must keep their quality.

Floors sit a little under the figures reported in the README (measured by
``benchmarks/routing_eval.py`` and ``benchmarks/train_scorer.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _metrics import auroc, balanced_accuracy

from adaptive_router import AdaptiveRouter, RoutingConfig

ROOT = Path(__file__).resolve().parents[2]
DEVSET = ROOT / "data" / "routing_devset.jsonl"


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    with DEVSET.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_shipped_model_on_the_dev_set_with_defaults(rows: list[dict[str, str]]) -> None:
    with AdaptiveRouter(RoutingConfig(gpu_monitor=False)) as router:
        scores = [router.decide(r["prompt"]).score for r in rows]
        tiers = [router.route(r["prompt"]) for r in rows]
    labels = [1.0 if r["label"] == "tier_high" else 0.0 for r in rows]
    assert auroc(labels, scores) >= 0.98
    assert balanced_accuracy(labels, [t == "tier_high" for t in tiers]) >= 0.95


def test_cross_validated_quality_of_the_training_recipe(rows: list[dict[str, str]]) -> None:
    """Retrains on 5 folds: what the recipe does on prompts it has not seen."""
    np = pytest.importorskip("numpy")
    import train_scorer

    from adaptive_router.features import extract

    feats = [extract(r["prompt"]) for r in rows]
    y = np.array([1.0 if r["label"] == "tier_high" else 0.0 for r in rows])
    folds = train_scorer.stratified_folds(y, 5, seed=7)
    p = train_scorer.cross_validate(feats, y, folds, min_df=3, l2_dims=10.0, l2_words=3.0)
    assert auroc(list(y), list(p)) >= 0.92
    assert balanced_accuracy(list(y), list(p >= 0.5)) >= 0.86


def test_shipped_weights_are_small() -> None:
    path = ROOT / "router" / "adaptive_router" / "complexity_model.txt"
    assert path.stat().st_size < 1_000_000
