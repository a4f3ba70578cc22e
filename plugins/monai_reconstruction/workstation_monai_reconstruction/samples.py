"""Clean synthetic slices for training and evaluation: the workstation's CT phantom, and an MR
image of the same anatomy. Seeded, so a seed always gives the same slices.

The phantom scales with its field of view, so its structures (and the thin cortical bone)
span more or fewer pixels with the matrix size: each phantom gets a random matrix of
`MIN_SIZE`-`size` pixels, centred in a `size` x `size` slice of air or background.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from workstation.testing.phantoms import ct_phantom

MIN_SIZE = 48
MR_INTENSITY = np.array([0, 300, 20, 60, 450, 700, 900], dtype=np.float32)
"""T2-like MR intensity by phantom label (background, body, lung, bone, liver, kidney, lesion),
as `workstation.testing.phantoms.write_mr_phantom_series` uses."""


def _phantom(rng: np.random.Generator, slices: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    matrix = int(rng.integers(MIN_SIZE, size + 1))
    spacing = (float(rng.uniform(0.7, 2.5)),) * 2 + (float(rng.uniform(2.0, 6.0)),)
    return ct_phantom(
        (slices, matrix, matrix), spacing, seed=int(rng.integers(2**31)), noise_hu=0.0
    )


def _centred(values: np.ndarray, size: int, fill: float) -> np.ndarray:
    out = np.full((values.shape[0], size, size), fill, np.float32)
    start = (size - values.shape[1]) // 2
    out[:, start : start + values.shape[1], start : start + values.shape[2]] = values
    return out


def _blur(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random slight in-plane blur (partial volume), from none to 0.8 pixel."""
    sigma = float(rng.uniform(0.0, 0.8))
    return ndimage.gaussian_filter(values, sigma=(0, sigma, sigma))


def ct_slices(seed: int, volumes: int, slices: int = 6, size: int = 112) -> np.ndarray:
    """Clean CT slices in HU, (volumes * slices, size, size) float32: the phantom's tissue values
    (cortical and cancellous bone included) with per-patient contrast changes, no noise."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(volumes):
        hu, labels = _phantom(rng, slices, size)
        offsets = np.concatenate([[0.0], rng.normal(0, 15, 6)]).astype(np.float32)
        values = _blur(hu.astype(np.float32) + offsets[labels], rng)
        out.append(_centred(values, size, -1000.0))
    return np.concatenate(out)


def mr_slices(seed: int, volumes: int, slices: int = 6, size: int = 112) -> np.ndarray:
    """Clean T2-like MR slices, (volumes * slices, size, size) float32, per-patient contrast."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(volumes):
        _, labels = _phantom(rng, slices, size)
        values = MR_INTENSITY * rng.uniform(0.8, 1.2, MR_INTENSITY.shape).astype(np.float32)
        values[0] = 0.0
        out.append(_centred(_blur(values[labels], rng), size, 0.0))
    return np.concatenate(out)
