"""Series-level figures of a classifier on labelled cases, with `monai.metrics`: ROC AUC and the
confusion-matrix metrics (accuracy, recall, specificity, precision, F1) at a threshold."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

CONFUSION_METRICS = {
    "accuracy": "accuracy",
    "recall": "sensitivity",
    "specificity": "specificity",
    "precision": "precision",
    "f1": "f1 score",
}


def series_figures(
    scores: Sequence[float], labels: Sequence[int], threshold: float = 0.5
) -> dict[str, Any]:
    """ROC AUC of `scores` (probability of the finding) against `labels` (1 = finding), and the
    confusion-matrix metrics of ``score >= threshold``."""
    from monai.metrics import compute_confusion_matrix_metric, compute_roc_auc, get_confusion_matrix

    y_score = torch.as_tensor(np.asarray(scores, dtype=np.float32))
    y_true = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    figures: dict[str, Any] = {"roc_auc": float(compute_roc_auc(y_score, y_true))}
    predicted = (y_score >= threshold).long()
    # One "class" column (the finding), one row per case: the binary confusion matrix.
    matrix = get_confusion_matrix(predicted[:, None], y_true[:, None])
    tp, fp, tn, fn = (int(v) for v in matrix.sum(dim=0)[0])
    figures.update(
        {
            name: float(compute_confusion_matrix_metric(monai_name, matrix.sum(dim=0)))
            for name, monai_name in CONFUSION_METRICS.items()
        }
    )
    figures.update(
        {
            "threshold": threshold,
            "cases": len(labels),
            "positives": int(y_true.sum()),
            "true_positives": tp,
            "false_positives": fp,
            "true_negatives": tn,
            "false_negatives": fn,
        }
    )
    return figures
