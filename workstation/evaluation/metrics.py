"""Scores from monai.metrics; torch and monai are imported inside each function."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

CONFUSION_METRICS = ("accuracy", "recall", "specificity", "precision", "f1")
_MONAI_CONFUSION_NAMES = ("accuracy", "sensitivity", "specificity", "precision", "f1 score")


def _finite(value: float) -> float:
    return float(value) if math.isfinite(float(value)) else float("nan")


def segmentation_scores(
    predicted: np.ndarray,
    reference: np.ndarray,
    label_values: Sequence[int],
    spacing_xyz: Sequence[float],
) -> dict[int, dict[str, float]]:
    """Dice and 95th-percentile Hausdorff distance (mm) per label value.

    Arrays are [z, y, x] on the same grid; spacing is (x, y, z) as in Volume. A label absent
    from both maps gets NaN (nothing to score), not a perfect score.
    """
    import torch
    from monai.metrics import DiceMetric, HausdorffDistanceMetric

    values = [int(v) for v in label_values]
    pred = np.stack([predicted == v for v in values])[None].astype(np.float32)
    ref = np.stack([reference == v for v in values])[None].astype(np.float32)
    pred_t, ref_t = torch.from_numpy(pred), torch.from_numpy(ref)
    dice = DiceMetric(include_background=True, reduction="none", ignore_empty=True)
    dice_values = dice(pred_t, ref_t)[0]
    hausdorff = HausdorffDistanceMetric(include_background=True, percentile=95, reduction="none")
    spacing_zyx = [float(s) for s in reversed(tuple(spacing_xyz))]
    hd_values = hausdorff(pred_t, ref_t, spacing=spacing_zyx)[0]
    scores = {}
    for i, value in enumerate(values):
        both_empty = not pred[0, i].any() and not ref[0, i].any()
        one_empty = pred[0, i].any() != ref[0, i].any()
        scores[value] = {
            "dice": float("nan") if both_empty else _finite(dice_values[i].item()),
            "hd95_mm": float("nan") if one_empty or both_empty else _finite(hd_values[i].item()),
        }
    return scores


def classification_scores(
    truth: Sequence[int], probabilities: Sequence[Sequence[float]], class_names: Sequence[str]
) -> dict[str, Any]:
    """ROC AUC (binary: of the second class; more classes: one-vs-rest macro average) and the
    confusion-matrix metrics of the arg-max prediction, per class and macro-averaged."""
    import torch
    from monai.metrics import ConfusionMatrixMetric, compute_roc_auc

    n_classes = len(class_names)
    y = torch.as_tensor(list(truth), dtype=torch.long)
    scores = torch.as_tensor(np.asarray(probabilities, dtype=np.float64))
    y_onehot = torch.nn.functional.one_hot(y, n_classes).float()
    predicted = scores.argmax(dim=1)
    pred_onehot = torch.nn.functional.one_hot(predicted, n_classes).float()
    summary: dict[str, Any] = {"cases": len(y), "classes": list(class_names)}
    present = set(y.tolist())
    if n_classes == 2:
        summary["roc_auc"] = (
            float(compute_roc_auc(scores[:, 1], y)) if present == {0, 1} else float("nan")
        )
    else:
        summary["roc_auc"] = (
            float(compute_roc_auc(scores, y_onehot, average="macro"))
            if len(present) == n_classes
            else float("nan")
        )
    metric = ConfusionMatrixMetric(
        include_background=True, metric_name=list(_MONAI_CONFUSION_NAMES), reduction="sum_batch"
    )
    metric(pred_onehot, y_onehot)
    per_class_values = metric.aggregate()
    per_class = {
        ours: [_finite(v) for v in values.reshape(-1).tolist()]
        for ours, values in zip(CONFUSION_METRICS, per_class_values, strict=True)
    }
    summary["per_class"] = {
        name: {metric_name: per_class[metric_name][i] for metric_name in CONFUSION_METRICS}
        for i, name in enumerate(class_names)
    }
    if n_classes == 2:  # the usual binary figures are those of the positive (second) class
        summary["positive_class"] = class_names[1]
        summary["averaging"] = (
            f"recall, specificity, precision, F1 and ROC AUC treat {class_names[1]!r} as the "
            f"positive class; accuracy is over all cases"
        )
        for metric_name in CONFUSION_METRICS:
            summary[metric_name] = per_class[metric_name][1]
    else:
        summary["positive_class"] = None
        summary["averaging"] = (
            "recall, specificity, precision, F1 and ROC AUC are one class against the rest, "
            "averaged over the classes (macro); accuracy is over all cases"
        )
        for metric_name in CONFUSION_METRICS:
            summary[metric_name] = float(np.nanmean(per_class[metric_name]))
    summary["accuracy"] = float((predicted == y).float().mean())
    summary["confusion_matrix"] = _confusion_matrix(y.tolist(), predicted.tolist(), n_classes)
    summary["confusion_matrix_layout"] = (
        "rows: true class, columns: predicted class, both in the order of 'classes'"
    )
    return summary


def _confusion_matrix(truth: list[int], predicted: list[int], n: int) -> list[list[int]]:
    """Rows: true class; columns: predicted class."""
    matrix = [[0] * n for _ in range(n)]
    for t, p in zip(truth, predicted, strict=True):
        matrix[t][p] += 1
    return matrix


def roc_curve(truth: Sequence[int], scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates at every threshold, for the ROC plot."""
    y = np.asarray(truth, dtype=bool)
    s = np.asarray(scores, dtype=float)
    thresholds = np.concatenate([[np.inf], np.unique(s)[::-1]])
    positives, negatives = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    tpr = np.array([(s[y] >= t).sum() / positives for t in thresholds])
    fpr = np.array([(s[~y] >= t).sum() / negatives for t in thresholds])
    return fpr, tpr


def binary_roc_auc(truth: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve of one class against the rest (monai's compute_roc_auc)."""
    import torch
    from monai.metrics import compute_roc_auc

    y = torch.as_tensor(np.asarray(truth), dtype=torch.long)
    return float(compute_roc_auc(torch.as_tensor(np.asarray(scores, dtype=np.float64)), y))


def reconstruction_scores(output: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """PSNR (dB) and SSIM of an output against its reference, both on the reference's value
    range (so HU volumes are scored on their real range, not on 0..1)."""
    import torch
    from monai.metrics import PSNRMetric, SSIMMetric

    ref = np.asarray(reference, dtype=np.float32)
    out = np.asarray(output, dtype=np.float32)
    data_range = float(ref.max() - ref.min()) or 1.0
    ref_t, out_t = torch.from_numpy(ref)[None, None], torch.from_numpy(out)[None, None]
    psnr = PSNRMetric(max_val=data_range, reduction="none")(out_t, ref_t)
    window = min(11, *ref.shape)
    window = window if window % 2 else window - 1
    ssim = SSIMMetric(spatial_dims=3, data_range=data_range, win_size=max(window, 1))(out_t, ref_t)
    return {"psnr_db": _finite(psnr.reshape(-1)[0].item()), "ssim": _finite(ssim.reshape(-1)[0])}
