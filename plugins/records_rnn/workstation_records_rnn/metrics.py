"""ROC AUC, recall, precision and F1 in numpy (no scikit-learn in the workstation)."""

from __future__ import annotations

import numpy as np


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    positives, negatives = scores[labels], scores[~labels]
    if positives.size == 0 or negatives.size == 0:
        raise ValueError("ROC AUC needs at least one positive and one negative")
    order = np.argsort(np.concatenate([positives, negatives]), kind="mergesort")
    ranks = np.empty(order.size)
    ranks[order] = np.arange(1, order.size + 1)
    combined = np.concatenate([positives, negatives])
    for value in np.unique(combined):  # average ranks of ties
        tied = combined == value
        ranks[tied] = ranks[tied].mean()
    rank_sum = ranks[: positives.size].sum()
    return float(
        (rank_sum - positives.size * (positives.size + 1) / 2) / (positives.size * negatives.size)
    )


def classification_report(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    labels = np.asarray(labels, dtype=bool)
    predicted = np.asarray(scores) >= threshold
    tp = int((predicted & labels).sum())
    fp = int((predicted & ~labels).sum())
    fn = int((~predicted & labels).sum())
    recall = tp / (tp + fn) if tp + fn else 0.0
    precision = tp / (tp + fp) if tp + fp else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "roc_auc": roc_auc(labels, scores),
        "threshold": threshold,
        "recall": recall,
        "precision": precision,
        "f1": f1,
        "positives": int(labels.sum()),
        "negatives": int((~labels).sum()),
    }
