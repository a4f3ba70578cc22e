"""MONAI transforms between a series' grid and the network's grid, and back.

Forward: orientation to the canonical axis codes, resampling to the training spacing, HU window
to [0, 1]. Backward, `to_source_grid` (MONAI's `Invertd` on float maps) serves callers that need
probabilities on the source grid; labels go back by `labels_back.labels_to_source_grid`.

Volumes are ``[z, y, x]`` in LPS; MONAI wants channel-first ``(C, i, j, k)`` arrays with a RAS
affine, so the conversion is explicit here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, Invertd, Orientationd, ScaleIntensityRanged, Spacingd

from workstation.plugins.api import Geometry, Volume

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
RAS_LABELS = (("L", "R"), ("P", "A"), ("I", "S"))  # MONAI axis-code letters, RAS affines
SLAB_BYTES = 4 << 20
"""Series bytes resampled at once onto the network grid: in-between arrays stay in cache."""


def to_metatensor(volume: Volume) -> MetaTensor:
    """(1, i, j, k) float32 MetaTensor with the volume's RAS affine."""
    array = np.ascontiguousarray(volume.array.transpose(2, 1, 0), dtype=np.float32)
    return MetaTensor(torch.from_numpy(array)[None], affine=torch.as_tensor(volume.ras_affine()))


def metatensor_geometry(tensor: MetaTensor) -> Geometry:
    """The LPS grid of a channel-first (C, i, j, k) MetaTensor."""
    return ras_grid_geometry(np.asarray(tensor.affine, dtype=float), tensor.shape[1:])


def ras_grid_geometry(ras_affine: np.ndarray, shape_ijk: Sequence[int]) -> Geometry:
    """The LPS grid of an (i, j, k) array with this RAS affine."""
    affine = LPS_TO_RAS @ np.asarray(ras_affine, dtype=float)
    linear = affine[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    i, j, k = (int(v) for v in shape_ijk)
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


def network_input(volume: Volume, model_config: dict[str, Any]) -> tuple[torch.Tensor, Geometry]:
    """The network's input, (1, 1, i, j, k) float32, and its grid: what `preprocess` makes.

    `Spacingd` keeps the series' axis directions (oblique ones too) and only changes the voxel
    size, so the resampling is separable: this makes the same output grid as MONAI's
    `Orientationd` + `Spacingd` (nibabel's orientation, MONAI's `zoom_affine` /
    `compute_shape_offset`), fills it by linear interpolation along one axis at a time on views
    of the series (no reoriented copy of the whole series, no 3-D sampling grid), then applies
    the same intensity window. Equal to `preprocess` within float rounding (tested); a grid it
    cannot split per axis goes through `preprocess`."""
    aligned = _aligned_network_input(volume, model_config)
    if aligned is not None:
        return aligned
    data, _ = preprocess(volume, model_config)
    return data["image"].as_tensor()[None], metatensor_geometry(data["image"])


def _aligned_network_input(
    volume: Volume, model_config: dict[str, Any]
) -> tuple[torch.Tensor, Geometry] | None:
    from monai.data.utils import affine_to_spacing, compute_shape_offset, zoom_affine
    from nibabel import orientations

    axcodes = str(model_config.get("axcodes", "RAS"))
    affine = volume.ras_affine()  # (i, j, k) index -> RAS mm
    array = volume.array.transpose(2, 1, 0)  # (i, j, k) view
    # Orientation: the permutation and flips MONAI's Orientationd picks (nibabel's), as views.
    ornt = orientations.ornt_transform(
        orientations.io_orientation(affine),
        orientations.axcodes2ornt(axcodes, labels=RAS_LABELS),
    )
    oriented_shape = tuple(array.shape[int(np.flatnonzero(ornt[:, 0] == r)[0])] for r in range(3))
    oriented_affine = affine @ orientations.inv_ornt_aff(ornt, array.shape)
    # Spacing: Spacingd's output grid (keeps a spacing within MONAI's tolerance of the target).
    target = np.asarray(model_config["spacing"], dtype=np.float64)
    current = affine_to_spacing(oriented_affine, 3, np.float64)
    pixdim = np.where(np.abs(current - target) <= 1e-3, current, target)
    out_affine = zoom_affine(oriented_affine, pixdim, diagonal=False)
    out_shape, offset = compute_shape_offset(oriented_shape, oriented_affine, out_affine, False)
    out_affine[:3, 3] = offset[:3]
    index_map = np.linalg.solve(oriented_affine, out_affine)  # output index -> oriented index
    off_axis = index_map[:3, :3] - np.diag(np.diag(index_map[:3, :3]))
    if np.abs(off_axis).sum(axis=1).max() * max(int(n) for n in out_shape) > 1e-3:
        return None  # a sheared grid: positions along one axis depend on the others
    # Resample along the stored array's own axes (gathers along a transposed, flipped view are
    # several times slower), most shrinking axis first; reorder the small result at the end.
    stored_axis = [0, 0, 0]  # oriented axis -> axis of volume.array ([z, y, x])
    positions: list[np.ndarray] = [np.empty(0)] * 3  # per stored axis: where to sample it
    for source, (target, direction) in enumerate(ornt.astype(int)):
        stored, size = 2 - source, volume.array.shape[2 - source]
        along = np.arange(int(out_shape[target])) * index_map[target, target]
        along = along + index_map[target, 3]
        stored_axis[target] = stored
        positions[stored] = size - 1 - along if direction < 0 else along
    values = resample_separable(volume.array, positions)
    # The intensity window written straight into the network's memory order (never on the
    # series' own array): one pass that reads the stored order, on torch's CPU threads.
    low, high = (float(v) for v in model_config["window"])
    if values.dtype == np.float16 or values.dtype == np.bool_:
        values = values.astype(np.float32)  # computed in float32 at least, as MONAI does
    elif not values.flags.writeable or min(values.strides) < 0:
        values = np.array(values)  # torch takes writable arrays with positive strides only
    stored = torch.from_numpy(values).permute(*stored_axis)
    precision = torch.float64 if values.dtype == np.float64 else torch.float32
    tensor = torch.sub(stored, low, out=torch.empty(stored.shape, dtype=precision))
    tensor = tensor.div_(high - low).clamp_(0.0, 1.0).float()
    return tensor[None, None], ras_grid_geometry(out_affine, out_shape)


def resample_separable(values: np.ndarray, positions: Sequence[np.ndarray]) -> np.ndarray:
    """`values` resampled linearly at `positions[a]` along each axis a, most shrinking axis
    first. The two most shrinking axes are resampled slab by slab along the third (a few MB
    per slab, on a pool of as many threads as torch uses), so a large series is read once and
    the arrays in between stay in cache: 2.5x faster than whole-array passes on a 512 x 512 x
    200 CT; one slab for small series."""
    shrink = [len(positions[a]) / values.shape[a] for a in range(3)]
    first, second, last = (int(a) for a in np.argsort(shrink, kind="stable"))
    shape = list(values.shape)
    shape[first], shape[second] = len(positions[first]), len(positions[second])
    per_index = max(values.nbytes // max(values.shape[last], 1), 1)
    step = max(1, SLAB_BYTES // per_index)
    starts = range(0, values.shape[last], step)
    if len(starts) == 1:
        part = _resample_axis(values, positions[first], first)
        part = _resample_axis(part, positions[second], second)
        return _resample_axis(part, positions[last], last)
    planes = np.empty(shape, np.result_type(values.dtype, np.float32))

    def resample_slab(start: int) -> None:
        slab = [slice(None)] * 3
        slab[last] = slice(start, start + step)
        part = _resample_axis(values[tuple(slab)], positions[first], first)
        planes[tuple(slab)] = _resample_axis(part, positions[second], second)

    workers = max(1, min(torch.get_num_threads(), len(starts)))
    if workers == 1:
        for start in starts:
            resample_slab(start)
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="network-grid") as pool:
            list(pool.map(resample_slab, starts))
    return _resample_axis(planes, positions[last], last)


def _resample_axis(values: np.ndarray, positions: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation along one axis at fractional index `positions`, border padding.
    Positions within 1e-4 of a whole index take that sample exactly (a plain subsample)."""
    size = values.shape[axis]
    positions = np.clip(positions, 0.0, size - 1)
    nearest = np.rint(positions)
    if np.allclose(positions, nearest, rtol=0.0, atol=1e-4):
        index = nearest.astype(np.intp)
        step = index[1] - index[0] if len(index) > 1 else 1
        evenly = np.array_equal(index, index[0] + step * np.arange(len(index)))
        if len(index) > 1 and step != 0 and evenly:
            stop = int(index[-1]) + (1 if step > 0 else -1)
            chosen = [slice(None)] * values.ndim
            chosen[axis] = slice(int(index[0]), stop if stop >= 0 else None, int(step))
            return values[tuple(chosen)]  # a strided view, no copy
        return np.take(values, index, axis=axis)
    lower = np.floor(positions).astype(np.intp)
    upper = np.minimum(lower + 1, size - 1)
    shape = [1] * values.ndim
    shape[axis] = len(positions)
    weight = (positions - lower).astype(np.float32).reshape(shape)
    below = np.take(values, lower, axis=axis).astype(np.float32, copy=False)
    above = np.take(values, upper, axis=axis)
    return below + weight * (above - below)


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
