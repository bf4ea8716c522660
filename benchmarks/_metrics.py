"""Classification metrics for the routing tools, in plain Python (no scikit-learn needed)."""

from __future__ import annotations

from collections.abc import Iterable


def auroc(labels: Iterable[float], scores: Iterable[float]) -> float:
    """Area under the ROC curve by the rank-sum formula; ties count one half."""
    pairs = sorted(zip(scores, labels, strict=True))
    n_pos = sum(1 for _, y in pairs if y)
    n_neg = len(pairs) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUROC needs both classes")
    rank_sum = 0.0
    i = 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        mean_rank = (i + 1 + j) / 2.0
        rank_sum += mean_rank * sum(1 for k in range(i, j) if pairs[k][1])
        i = j
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def confusion(labels: Iterable[float], predicted: Iterable[bool]) -> dict[str, int]:
    """Counts with tier_high as the positive class."""
    tp = sum(1 for y, p in zip(labels, predicted, strict=True) if y and p)
    fn = sum(1 for y, p in zip(labels, predicted, strict=True) if y and not p)
    fp = sum(1 for y, p in zip(labels, predicted, strict=True) if not y and p)
    tn = sum(1 for y, p in zip(labels, predicted, strict=True) if not y and not p)
    return {"tp": tp, "fn": fn, "fp": fp, "tn": tn}


def balanced_accuracy(labels: Iterable[float], predicted: Iterable[bool]) -> float:
    c = confusion(labels, predicted)
    tpr = c["tp"] / max(c["tp"] + c["fn"], 1)
    tnr = c["tn"] / max(c["tn"] + c["fp"], 1)
    return (tpr + tnr) / 2.0
