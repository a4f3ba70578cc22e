"""Series -> training slices: checks the request first, then resamples every axial slice to
64x64 and scales modality values to [-1, 1] with the value range of the training data.

Every check runs before any training, so a bad request is refused with a message naming the
series and the problem, and the model folder is left as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from workstation.plugins.api import TrainingRefused, Volume
from workstation_monai_gan.model import IMAGE_SIZE

MIN_SLICES = 32
MIN_IN_PLANE = 32
CPU_SLICE_EPOCH_LIMIT = 100_000
"""Slices x epochs a CPU may be asked to train (about an hour on one core); more needs a GPU."""


@dataclass(frozen=True)
class TrainingData:
    """Training slices scaled to [-1, 1] and what the generated images must look like."""

    images: np.ndarray  # float32 [n, 64, 64] in [-1, 1]
    modality: str
    value_range: tuple[float, float]
    pixel_spacing: tuple[float, float]  # (x, y) mm after resampling to 64x64
    slice_thickness: float

    def config(self) -> dict[str, object]:
        return {
            "image_size": IMAGE_SIZE,
            "modality": self.modality,
            "value_range": [float(v) for v in self.value_range],
            "pixel_spacing": [float(v) for v in self.pixel_spacing],
            "slice_thickness": float(self.slice_thickness),
            "training_slices": len(self.images),
        }


def _name(volume: Volume, index: int) -> str:
    source = volume.source
    return f"series {source.stack_id}" if source is not None else f"volume {index + 1}"


def check_request(volumes: Sequence[Volume], epochs: int, device: str) -> None:
    """Refuse, before any work, what cannot be trained well: too few slices, mixed modalities,
    mixed slice sizes or spacings, or a CPU asked for a GPU-sized job."""
    if not volumes:
        raise TrainingRefused("no series to train on")
    modalities = {}
    shapes = {}
    for index, volume in enumerate(volumes):
        name = _name(volume, index)
        if volume.array.ndim != 3:
            raise TrainingRefused(f"{name}: expected a 3D series, got shape {volume.array.shape}")
        modalities.setdefault(str(volume.metadata.get("modality") or "OT"), []).append(name)
        shapes.setdefault(tuple(volume.array.shape[1:]), []).append(name)
        if min(volume.array.shape[1:]) < MIN_IN_PLANE:
            raise TrainingRefused(
                f"{name}: slices of {volume.array.shape[2]}x{volume.array.shape[1]} pixels are "
                f"too small; the GAN needs at least {MIN_IN_PLANE}x{MIN_IN_PLANE}"
            )
    if len(modalities) > 1:
        listed = "; ".join(f"{m}: {', '.join(names)}" for m, names in modalities.items())
        raise TrainingRefused(f"the series mix modalities ({listed}); train on one modality")
    if len(shapes) > 1:
        listed = "; ".join(f"{s[1]}x{s[0]}: {', '.join(n)}" for s, n in shapes.items())
        raise TrainingRefused(f"the series mix slice sizes ({listed}); train on one size")
    spacings = np.array([volume.spacing[:2] for volume in volumes], dtype=float)
    if np.ptp(spacings, axis=0).max() > 0.1 * spacings.min():
        raise TrainingRefused(
            "the series mix pixel spacings "
            f"({', '.join(f'{s[0]:g}x{s[1]:g} mm' for s in spacings)}); "
            "train on series with one spacing so generated images have one scale"
        )
    total = sum(volume.array.shape[0] for volume in volumes)
    if total < MIN_SLICES:
        raise TrainingRefused(
            f"only {total} slices in the chosen series; the GAN needs at least {MIN_SLICES} "
            "(choose more or longer series)"
        )
    if not device.startswith(("cuda", "mps")) and total * epochs > CPU_SLICE_EPOCH_LIMIT:
        raise TrainingRefused(
            f"{total} slices x {epochs} epochs is too much to train on the CPU (no GPU here; "
            f"the limit is {CPU_SLICE_EPOCH_LIMIT} slice-epochs); use a GPU, fewer epochs or "
            "fewer series"
        )


def resample_slices(array: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """[n, h, w] -> [n, size, size] float32, area-averaged (antialiased) bilinear resampling."""
    import torch

    tensor = torch.as_tensor(np.asarray(array, dtype=np.float32))[:, None]
    resized = torch.nn.functional.interpolate(
        tensor, size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    return resized[:, 0].numpy()


def prepare(volumes: Sequence[Volume], epochs: int, device: str) -> TrainingData:
    """Check the request, then resample and scale every slice of every volume."""
    check_request(volumes, epochs, device)
    slices = np.concatenate([resample_slices(volume.array) for volume in volumes])
    low, high = float(slices.min()), float(slices.max())
    if high <= low:
        raise TrainingRefused("every pixel of the chosen series has the same value")
    first = volumes[0]
    ny, nx = first.array.shape[1:]
    spacing = (first.spacing[0] * nx / IMAGE_SIZE, first.spacing[1] * ny / IMAGE_SIZE)
    return TrainingData(
        images=to_unit(slices, (low, high)),
        modality=str(first.metadata.get("modality") or "OT"),
        value_range=(low, high),
        pixel_spacing=spacing,
        slice_thickness=float(first.spacing[2]),
    )


def to_unit(values: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    low, high = value_range
    return (2.0 * (values - low) / (high - low) - 1.0).astype(np.float32)


def from_unit(images: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    low, high = value_range
    return (np.clip(images, -1.0, 1.0) + 1.0) / 2.0 * (high - low) + low
