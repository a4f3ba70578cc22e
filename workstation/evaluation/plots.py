"""Figures for the evaluation folder (matplotlib, Agg backend: no display needed).

Each PNG also carries its title in the file's "Title" text entry, so a figure copied out of
the folder still says what it shows (and DEMO WEIGHTS when they made it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path, title: str) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=100, metadata={"Title": title})
    _pyplot().close(figure)
    return path


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
    axes.set_title(title, fontsize=9)
    return _save(figure, path, title)


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
    axes.set_title(title, fontsize=9)
    axes.legend(loc="lower right")
    return _save(figure, path, title)


def reconstruction_plot(
    case_ids: Sequence[str],
    psnr: Sequence[float],
    ssim: Sequence[float],
    path: Path,
    title: str,
    psnr_input: Sequence[float] | None = None,
    ssim_input: Sequence[float] | None = None,
) -> Path:
    """Per-case PSNR and SSIM of the restoration, beside those of its input when given."""
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(8, 3.5))
    positions = np.arange(len(case_ids))
    paired = psnr_input is not None and ssim_input is not None
    width = 0.4 if paired else 0.8
    shift = width / 2 if paired else 0.0
    for axes, restored, given, colour in (
        (left, psnr, psnr_input, "tab:blue"),
        (right, ssim, ssim_input, "tab:orange"),
    ):
        if paired:
            axes.bar(positions - shift, given, width, color="lightgrey", label="input")
        axes.bar(positions + shift, restored, width, color=colour, label="restored")
        axes.set_xticks(positions, case_ids, rotation=45, ha="right", fontsize=7)
        if paired:  # above the bars: the axes are 20% taller than the highest one
            axes.legend(loc="upper left", fontsize=7, ncols=2, frameon=False)
    finite = [v for v in (*psnr, *(psnr_input or ())) if np.isfinite(v)]
    left.set_ylim(0, 1.2 * max(finite, default=1.0))
    left.set_ylabel("PSNR (dB)")
    right.set_ylabel("SSIM")
    right.set_ylim(0, 1.2)
    right.set_yticks(np.linspace(0, 1, 6))
    figure.suptitle(title, fontsize=10)
    return _save(figure, path, title)
