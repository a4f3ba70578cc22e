"""Simulated degradations, so that there is a clean reference to measure a restoration against.

- Low-dose CT: independent Gaussian noise in image space, in HU. Real low-dose noise is Poisson
  in the projections and comes out of filtered back-projection correlated and streaky; Gaussian
  image noise is the simpler stand-in used for the demo weights and for `simulate`.
- Accelerated MR: each slice's k-space (centred 2D FFT of the magnitude image) is undersampled
  along its columns (the x axis of the slice) with MONAI's `EquispacedKspaceMaskd` or
  `RandomKspaceMaskd`; the zero-filled reconstruction is the magnitude of the inverse FFT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

MASKS = ("equispaced", "random")


def simulate_low_dose(hu: np.ndarray, noise_hu: float, seed: int) -> np.ndarray:
    """`hu` (any shape) plus Gaussian noise of standard deviation `noise_hu`, as float32."""
    rng = np.random.default_rng(seed)
    return (hu.astype(np.float32) + rng.normal(0.0, noise_hu, hu.shape)).astype(np.float32)


@dataclass
class Undersampled:
    """Slices after k-space undersampling: what the MR restoration starts from."""

    zero_filled: torch.Tensor  # (N, H, W) magnitude of the zero-filled reconstruction
    kspace: torch.Tensor  # (N, 1, H, W, 2) sampled k-space (zeros where not sampled)
    mask: torch.Tensor  # broadcastable to kspace: 1 where a column was sampled


def to_kspace(images: torch.Tensor) -> torch.Tensor:
    """Centred 2D FFT of real (N, H, W) slices as MONAI's (N, 1, H, W, 2) real/imaginary pairs."""
    from monai.data.fft_utils import fftn_centered

    pairs = torch.stack([images, torch.zeros_like(images)], dim=-1)[:, None]
    return fftn_centered(pairs, spatial_dims=2, is_complex=True)


def from_kspace(kspace: torch.Tensor) -> torch.Tensor:
    """Magnitude (N, H, W) of the centred inverse FFT of (N, 1, H, W, 2) k-space."""
    from monai.data.fft_utils import ifftn_centered

    image = ifftn_centered(kspace, spatial_dims=2, is_complex=True)[:, 0]
    return torch.sqrt((image**2).sum(dim=-1))


def undersample(
    images: torch.Tensor,
    acceleration: float = 4,
    center_fraction: float = 0.08,
    mask: str = "equispaced",
    seed: int = 0,
) -> Undersampled:
    """Retrospectively undersample (N, H, W) slices with one MONAI k-space mask for all of them
    (one acquisition pattern per series, as a scanner would use)."""
    from monai.apps.reconstruction.transforms.dictionary import (
        EquispacedKspaceMaskd,
        RandomKspaceMaskd,
    )
    from monai.utils import FastMRIKeys

    if mask not in MASKS:
        raise ValueError(f"mask must be one of {', '.join(MASKS)}, got {mask!r}")
    transform_type = EquispacedKspaceMaskd if mask == "equispaced" else RandomKspaceMaskd
    transform = transform_type(
        keys=["kspace"],
        center_fractions=[float(center_fraction)],
        accelerations=[float(acceleration)],
        spatial_dims=2,
        is_complex=True,
    )
    transform.set_random_state(seed=seed)
    out = transform({"kspace": to_kspace(images.float())})
    zero_filled = torch.as_tensor(out["kspace_masked_ifft"]).float().reshape(images.shape)
    sampled = torch.as_tensor(out["kspace_masked"]).float()
    return Undersampled(zero_filled, sampled, torch.as_tensor(out[FastMRIKeys.MASK]).float())


def data_consistency(images: torch.Tensor, measured: Undersampled) -> torch.Tensor:
    """Put the measured k-space columns back into the k-space of restored (N, H, W) slices, so
    the network only fills in what was not sampled. The merged k-space is no longer exactly
    that of a real image; its real part (clipped at 0) is returned, the closest real,
    non-negative image (measured: 0.2-0.5 dB better than the magnitude), so the sampled
    columns are kept closely, not bit for bit."""
    from monai.data.fft_utils import ifftn_centered

    kspace = to_kspace(images.float())
    mask = measured.mask.to(kspace.device)
    merged = kspace * (1.0 - mask) + measured.kspace.to(kspace.device) * mask
    return ifftn_centered(merged, spatial_dims=2, is_complex=True)[:, 0, ..., 0].clamp_min(0.0)
