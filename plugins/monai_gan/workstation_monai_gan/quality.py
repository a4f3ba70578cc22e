"""How good and how original generated images are, measured against real slices.

Realism: squared maximum mean discrepancy (MMD²) between handcrafted features of two image sets,
with a sum of Gaussian kernels at 1, 10 and 100 times the reference set's median squared
distance (one fixed kernel for every comparison; the wide ones keep far-off sets, such as
noise, from all scoring the same saturated value). Features, in modality values scaled by the
value range: the fraction of pixels in value bands (air, lung, fat/soft tissue, organ, bone),
mean and spread, and an 8x8 block-mean thumbnail (where things are). Lower is closer; about 0
for two samples of one distribution.

Memorisation: the root-mean-square distance (in modality units) from each generated image to
its nearest training image, compared with the same distance for near-duplicates (a training
image with fresh noise at the training data's own noise level). A model that copied its
training images would produce distances like the near-duplicates'.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

BANDS = (-1e9, -900.0, -500.0, -150.0, 20.0, 50.0, 150.0, 500.0, 1e9)


def features(images: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """[n, 64, 64] modality values -> [n, k] features on comparable scales."""
    images = np.asarray(images, dtype=np.float64)
    n = len(images)
    low, high = value_range
    scale = max(high - low, 1e-9)
    bands = np.stack(
        [((images >= a) & (images < b)).mean(axis=(1, 2)) for a, b in itertools.pairwise(BANDS)], 1
    )
    moments = np.stack([images.mean(axis=(1, 2)) / scale, images.std(axis=(1, 2)) / scale], 1)
    h, w = images.shape[1:]
    thumbs = images.reshape(n, 8, h // 8, 8, w // 8).mean(axis=(2, 4)).reshape(n, 64) / scale
    return np.concatenate([bands, moments, thumbs], axis=1)


def mmd2(x: np.ndarray, y: np.ndarray, reference: np.ndarray) -> float:
    """Unbiased MMD² between feature sets `x` and `y`; multi-scale Gaussian kernel scaled by
    the median pairwise squared distance within `reference`."""
    r = reference  # features are on one scale already; per-feature z-scores would let a
    # feature that never varies in the reference (air in a corner) dominate every distance
    bandwidth = np.median(_sq_dist(r, r)[np.triu_indices(len(r), 1)])

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d = _sq_dist(a, b)
        return sum(np.exp(-d / (bandwidth * scale)) for scale in (1.0, 10.0, 100.0)) / 3.0

    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    m, n = len(x), len(y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2 * kxy.mean()
    )


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T, 0.0)


def nearest_rms(images: np.ndarray, training: np.ndarray, exclude_self: bool = False) -> np.ndarray:
    """For each image, the RMS difference to its nearest training image (modality units)."""
    a = np.asarray(images, np.float64).reshape(len(images), -1)
    b = np.asarray(training, np.float64).reshape(len(training), -1)
    d = _sq_dist(a, b) / a.shape[1]
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    return np.sqrt(d.min(axis=1))


def noise_level(images: np.ndarray) -> float:
    """The pixel noise of real slices: the robust spread of horizontal neighbour differences
    divided by sqrt(2) (edges are rare, so the median absolute deviation ignores them)."""
    diff = np.diff(np.asarray(images, np.float64), axis=2).ravel()
    return float(1.4826 * np.median(np.abs(diff - np.median(diff))) / np.sqrt(2))


def baselines(training: np.ndarray, count: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """What any generator must beat: Gaussian noise with the training data's mean and spread,
    and the blurred mean training image (with that noise level added)."""
    from scipy.ndimage import gaussian_filter

    mean, std = float(training.mean()), float(training.std())
    noise = rng.normal(mean, std, size=(count, *training.shape[1:]))
    blurred = gaussian_filter(training.mean(0), 2.0)
    level = noise_level(training)
    mean_images = blurred[None] + rng.normal(0, level, size=(count, *training.shape[1:]))
    return {"noise": noise, "blurred_mean": mean_images}


def slices_of(volumes: Sequence[Any]) -> np.ndarray:
    from workstation_monai_gan.data import resample_slices

    return np.concatenate([resample_slices(v.array) for v in volumes])


def evaluate(
    model_path: str | Path,
    training_volumes: Sequence[Any],
    held_out_volumes: Sequence[Any],
    count: int = 256,
    seed: int = 0,
) -> dict[str, Any]:
    """The figures the model card reports: MMD² of generated, noise and blurred-mean images
    against held-out slices, and nearest-training-image distances."""
    from workstation_monai_gan.generate import sample
    from workstation_monai_gan.model import load_model

    generator, config = load_model(model_path)
    value_range = tuple(config["value_range"])
    train = slices_of(training_volumes)
    held = slices_of(held_out_volumes)
    generated = sample(generator, config, count, seed).astype(np.float64)
    rng = np.random.default_rng(seed)
    held_features = features(held, value_range)
    distances = {
        name: mmd2(features(images, value_range), held_features, held_features)
        for name, images in {
            "generated": generated,
            "training": train[rng.choice(len(train), count, replace=False)],
            **baselines(train, count, rng),
        }.items()
    }
    level = noise_level(train)
    picked = train[rng.choice(len(train), 64, replace=False)]
    duplicates = picked + rng.normal(0, level, size=picked.shape)
    generated_nn = nearest_rms(generated, train)
    duplicate_nn = nearest_rms(duplicates, train)
    held_nn = nearest_rms(held, train)
    return {
        "mmd2_vs_held_out": {k: round(v, 5) for k, v in distances.items()},
        "noise_level": round(level, 2),
        "nearest_training_rms": {
            "generated_min": round(float(generated_nn.min()), 2),
            "generated_median": round(float(np.median(generated_nn)), 2),
            "near_duplicate_max": round(float(duplicate_nn.max()), 2),
            "near_duplicate_median": round(float(np.median(duplicate_nn)), 2),
            "held_out_real_median": round(float(np.median(held_nn)), 2),
        },
    }
