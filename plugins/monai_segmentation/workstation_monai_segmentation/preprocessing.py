"""MONAI transforms between a series' grid and the network's grid, and back.

Forward: orientation to the canonical axis codes, resampling to the training spacing, HU window
to [0, 1]. Backward (`labels_to_source_grid`): labels are read back by nearest neighbour through one
affine index map, with the class probabilities interpolated only in the thin band where labels
change, so the label map lands on the exact grid of the
source series (same shape, spacing, origin and direction), oblique or anisotropic alike, without
resampling every class-probability map onto a grid that may be 10x larger. `to_source_grid`
(MONAI's `Invertd` on float maps) stays for callers that need probabilities on the source grid.

Volumes are ``[z, y, x]`` in LPS; MONAI wants channel-first ``(C, i, j, k)`` arrays with a RAS
affine, so the conversion is explicit here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, Invertd, Orientationd, ScaleIntensityRanged, Spacingd

from workstation.plugins.api import Geometry, Volume

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
RAS_LABELS = (("L", "R"), ("P", "A"), ("I", "S"))  # MONAI axis-code letters, RAS affines


def to_metatensor(volume: Volume) -> MetaTensor:
    """(1, i, j, k) float32 MetaTensor with the volume's RAS affine."""
    array = np.ascontiguousarray(volume.array.transpose(2, 1, 0), dtype=np.float32)
    return MetaTensor(torch.from_numpy(array)[None], affine=torch.as_tensor(volume.ras_affine()))


def metatensor_geometry(tensor: MetaTensor) -> Geometry:
    """The LPS grid of a channel-first (C, i, j, k) MetaTensor."""
    affine = LPS_TO_RAS @ np.asarray(tensor.affine, dtype=float)
    linear = affine[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    i, j, k = (int(v) for v in tensor.shape[1:])
    return Geometry(
        (k, j, i), tuple(spacing), tuple(affine[:3, 3]), tuple((linear / spacing).ravel())
    )


def from_network_array(array: np.ndarray) -> np.ndarray:
    """(i, j, k) -> [z, y, x]."""
    return np.ascontiguousarray(np.asarray(array).transpose(2, 1, 0))


def build_preprocessing(
    spacing: Sequence[float], window: Sequence[float], axcodes: str = "RAS"
) -> Compose:
    """The forward transforms, on the "image" key of a dictionary."""
    return Compose(
        [
            Orientationd(keys="image", axcodes=axcodes, labels=RAS_LABELS),
            Spacingd(
                keys="image",
                pixdim=tuple(float(s) for s in spacing),
                mode="bilinear",
                padding_mode="border",
            ),
            ScaleIntensityRanged(
                keys="image",
                a_min=float(window[0]),
                a_max=float(window[1]),
                b_min=0.0,
                b_max=1.0,
                clip=True,
            ),
        ]
    )


def preprocess(volume: Volume, model_config: dict[str, Any]) -> tuple[dict[str, Any], Compose]:
    """The network's input ({"image": (1, i, j, k) MetaTensor}) and the transform that made it."""
    transform = build_preprocessing(
        model_config["spacing"], model_config["window"], model_config.get("axcodes", "RAS")
    )
    return transform({"image": to_metatensor(volume)}), transform


def labels_to_source_grid(
    probabilities: np.ndarray, network_grid: Geometry, source_grid: Geometry
) -> np.ndarray:
    """Argmax of the class maps (C, z, y, x) on `network_grid`, read on every voxel of
    `source_grid` as if the maps had been resampled linearly first, at a fraction of the cost.

    Where all 3x3x3 network neighbours of a point's nearest network voxel share one label, every
    linear blend of their probabilities keeps that label, so nearest neighbour is exact there;
    only the thin band where labels change is interpolated. Points just past the network grid's
    edge take the edge values (border padding, as in the forward resampling)."""
    from scipy import ndimage

    if probabilities.shape[0] > 128:
        raise ValueError(
            f"the network gives {probabilities.shape[0]} classes; label maps hold at most 128"
        )
    network_inv = np.linalg.inv(network_grid.index_to_world_matrix)
    ijk_map = network_inv @ source_grid.index_to_world_matrix  # source (i, j, k) -> network
    flip = np.eye(4)[[2, 1, 0, 3]]
    zyx_map = flip @ ijk_map @ flip
    linear, shift = zyx_map[:3, :3], zyx_map[:3, 3]
    labels = probabilities.argmax(axis=0).astype(np.uint8)
    band = ndimage.maximum_filter(labels, size=3, mode="nearest") != ndimage.minimum_filter(
        labels, size=3, mode="nearest"
    )
    # label and band flag in one uint8 array, so one nearest-neighbour pass serves both
    packed = labels | (band.astype(np.uint8) << 7)
    shape = tuple(source_grid.shape)
    if np.allclose(linear - np.diag(np.diag(linear)), 0.0, atol=1e-9):
        # Grids with parallel axes (most series): nearest neighbour is separable per axis.
        axes = [
            np.clip(np.rint(linear[a, a] * np.arange(n) + shift[a]), 0, size - 1).astype(np.intp)
            for a, (n, size) in enumerate(zip(shape, packed.shape, strict=True))
        ]
        on_source = packed[np.ix_(*axes)]
    else:
        on_source = ndimage.affine_transform(
            packed,
            linear,
            offset=shift,
            output_shape=shape,
            output=np.uint8,
            order=0,
            mode="nearest",
        )
    in_band = np.flatnonzero(on_source >= 128)
    result = on_source & 127
    if in_band.size:
        zyx = np.stack(np.unravel_index(in_band, shape)).astype(np.float64)
        points = linear @ zyx + shift[:, None]
        blended = np.stack(
            [
                ndimage.map_coordinates(channel, points, order=1, mode="nearest")
                for channel in probabilities
            ]
        )
        result.ravel()[in_band] = blended.argmax(axis=0).astype(np.uint8)
    return result


def to_source_grid(channels: torch.Tensor, data: dict[str, Any], transform: Compose) -> np.ndarray:
    """Per-channel maps (C, i, j, k) on the network grid, resampled (linearly) onto the source
    grid: returns float32 (C, z, y, x)."""
    image: MetaTensor = data["image"]
    prediction = MetaTensor(channels.detach().float().cpu(), meta=dict(image.meta))
    inverter = Invertd(
        keys="pred", transform=transform, orig_keys="image", nearest_interp=False, to_tensor=True
    )
    inverted = inverter({"pred": prediction, "image": image})["pred"]
    array = inverted.detach().cpu().numpy() if hasattr(inverted, "detach") else np.asarray(inverted)
    return np.ascontiguousarray(array.transpose(0, 3, 2, 1), dtype=np.float32)
