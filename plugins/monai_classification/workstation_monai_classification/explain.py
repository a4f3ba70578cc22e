"""Explanation maps on the network grid: Grad-CAM and occlusion sensitivity (`monai.visualize`).

Both give, for every axial slice, where the network sees the target class, as values in [0, 1]
comparable across the series:

- Grad-CAM: each slice's class-activation map for the target class (from `layer`), scaled to
  its own maximum and multiplied by the slice's probability of the class, so slices the network
  finds normal stay dark instead of showing their own noise at full brightness;
- occlusion sensitivity: how much the slice's probability of the class drops when a square patch
  around each pixel is replaced by the patch's mean (so hiding a lesion removes it, and hiding
  liver does not draw a dark hole). It costs one network call per patch position, so only the
  slices that carry the finding are occluded (probability at least half the series' highest and
  at least 0.05: hiding part of a slice cannot lower a probability that is already near zero),
  and only within the body (pixels above the window's lower end); elsewhere the map is 0.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from workstation.plugins.api import Cancelled

OCCLUSION_MIN_PROBABILITY = 0.05


def _check(cancelled: Callable[[], bool] | None) -> None:
    if cancelled is not None and cancelled():
        raise Cancelled("the explanation was cancelled")


def gradcam_map(
    network: torch.nn.Module,
    slices: np.ndarray,
    probabilities: np.ndarray,
    target: int,
    layer: str,
    *,
    device: Any = "cpu",
    batch_size: int = 16,
    cancelled: Callable[[], bool] | None = None,
) -> np.ndarray:
    """Probability-weighted Grad-CAM of class `target`, ``[k, j, i]`` float32 in [0, 1]."""
    from monai.visualize import GradCAM

    module = dict(network.named_modules()).get(layer)
    if module is None:
        raise ValueError(
            f"Grad-CAM needs the layer {layer!r}, which this network does not have; "
            f"choose the occlusion explanation, which works with any network"
        )
    # MONAI's GradCAM registers hooks it never removes: remember what was there and remove
    # what it added, so repeated runs on a cached network do not pile hooks up.
    hooks_before = (set(module._forward_hooks), set(module._backward_hooks))
    try:
        cam = GradCAM(nn_module=network, target_layers=layer, postprocessing=lambda raw: raw)
        out = np.zeros(slices.shape, np.float32)
        for start in range(0, len(slices), batch_size):
            _check(cancelled)
            batch = torch.from_numpy(slices[start : start + batch_size, None]).to(device)
            with torch.enable_grad(), warnings.catch_warnings():
                # torch notes that the input needs no gradient: true, and harmless for Grad-CAM
                warnings.filterwarnings(
                    "ignore", message="Full backward hook", category=UserWarning
                )
                raw = cam(batch, class_idx=target)[:, 0].detach().float().cpu().numpy()
            peak = raw.reshape(len(raw), -1).max(axis=1)
            scale = np.where(peak > 0, 1.0 / np.maximum(peak, 1e-12), 0.0)
            weight = probabilities[start : start + len(raw), target]
            out[start : start + len(raw)] = raw * (scale * weight)[:, None, None]
    finally:
        for hooks, before in zip((module._forward_hooks, module._backward_hooks), hooks_before):
            for key in set(hooks) - before:
                del hooks[key]
        network.zero_grad(set_to_none=True)
    return np.clip(out, 0.0, 1.0)


def occlusion_map(
    network: torch.nn.Module,
    slices: np.ndarray,
    probabilities: np.ndarray,
    target: int,
    patch_px: int,
    *,
    device: Any = "cpu",
    batch_size: int = 32,
    cancelled: Callable[[], bool] | None = None,
    progress: Callable[[float], Any] | None = None,
) -> np.ndarray:
    """Drop in the probability of class `target` when each patch is hidden, ``[k, j, i]``."""
    from monai.visualize import OcclusionSensitivity

    occlusion = OcclusionSensitivity(
        nn_module=network,
        mask_size=int(patch_px),
        n_batch=int(batch_size),
        verbose=False,
        mode="mean_patch",
        overlap=0.5,
    )
    out = np.zeros(slices.shape, np.float32)
    scores = probabilities[:, target]
    floor = max(OCCLUSION_MIN_PROBABILITY, 0.5 * float(scores.max(initial=0.0)))
    chosen = np.flatnonzero(scores >= floor)
    for done, k in enumerate(chosen):
        _check(cancelled)
        rows, columns = np.nonzero(slices[k] > 0.0)
        if len(rows) == 0:
            continue
        box = [int(rows.min()), int(rows.max()) + 1, int(columns.min()), int(columns.max()) + 1]
        image = torch.from_numpy(slices[k][None, None]).to(device)
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # MONAI's list indexing, harmless
            occluded, _ = occlusion(image, b_box=box)
        remaining = occluded[0, target].float().cpu().numpy()
        out[k, box[0] : box[1], box[2] : box[3]] = np.clip(scores[k] - remaining, 0.0, 1.0)
        if progress is not None:
            progress((done + 1) / len(chosen))
    return out
