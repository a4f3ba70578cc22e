"""Figures for the evaluation folder (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def dice_box_plot(dice_by_label: Mapping[str, Sequence[float]], path: Path, title: str) -> Path:
    """One box of per-case Dice per label (cases where the label is absent are left out)."""
    plt = _pyplot()
    names = list(dice_by_label)
    data = [[v for v in dice_by_label[n] if np.isfinite(v)] for n in names]
    figure, axes = plt.subplots(figsize=(1.5 + 1.2 * max(len(names), 1), 4))
    axes.boxplot(data, showmeans=True)
    axes.set_xticks(range(1, len(names) + 1), names)
    axes.set_ylim(0, 1.02)
    axes.set_ylabel("Dice")
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def roc_plot(curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]], path: Path, title: str):
    """ROC curves: name -> (false positive rates, true positive rates, AUC)."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(4.5, 4.5))
    for name, (fpr, tpr, auc) in curves.items():
        axes.plot(fpr, tpr, drawstyle="steps-post", label=f"{name} (AUC {auc:.3f})")
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey")
    axes.set_xlabel("1 - specificity (false positive rate)")
    axes.set_ylabel("sensitivity (true positive rate)")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.set_title(title)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def reconstruction_plot(
    case_ids: Sequence[str], psnr: Sequence[float], ssim: Sequence[float], path: Path, title: str
) -> Path:
    """Per-case PSNR and SSIM side by side."""
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(8, 3.5))
    positions = np.arange(len(case_ids))
    left.bar(positions, psnr)
    left.set_ylabel("PSNR (dB)")
    right.bar(positions, ssim, color="tab:orange")
    right.set_ylabel("SSIM")
    right.set_ylim(0, 1.02)
    for axes in (left, right):
        axes.set_xticks(positions, case_ids, rotation=45, ha="right", fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
