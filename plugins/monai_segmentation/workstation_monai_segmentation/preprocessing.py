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
    values = volume.array
    shrink = [len(positions[a]) / values.shape[a] for a in range(3)]
    for stored in np.argsort(shrink, kind="stable"):
        values = _resample_axis(values, positions[int(stored)], int(stored))
    # The intensity window in place on one new array in stored order (never on the series'
    # own array), then one transposing copy by torch: half the time of numpy's strided copy.
    low, high = (float(v) for v in model_config["window"])
    windowed = np.empty(values.shape, np.result_type(values.dtype, np.float32))
    np.subtract(values, np.float32(low), out=windowed)
    windowed /= np.float32(high - low)
    np.clip(windowed, 0.0, 1.0, out=windowed)
    tensor = torch.from_numpy(windowed).permute(*stored_axis).contiguous().float()
    return tensor[None, None], ras_grid_geometry(out_affine, out_shape)


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


def labels_to_source_grid(
    probabilities: np.ndarray, network_grid: Geometry, source_grid: Geometry
) -> np.ndarray:
    """Argmax of the class maps (C, z, y, x) on `network_grid`, read on every voxel of
    `source_grid` as if the maps had been resampled linearly first, at a fraction of the cost.

    Where all 3x3x3 network neighbours of a point's nearest network voxel share one label, every
    linear blend of their probabilities keeps that label, so nearest neighbour is exact there;
    only the thin band where labels change is interpolated, and of it only the points whose
    2x2x2 interpolation cell mixes labels. Points just past the network grid's edge take the
    edge values (border padding, as in the forward resampling)."""
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
    # (C, i, j, k) from torch arrives as a transposed view: compute in its memory order
    ijk_channels = probabilities.transpose(0, 3, 2, 1)
    by_ijk = ijk_channels.flags.c_contiguous and not probabilities.flags.c_contiguous
    labels = (
        argmax_labels(ijk_channels).transpose(2, 1, 0) if by_ijk else argmax_labels(probabilities)
    )
    shape = tuple(source_grid.shape)
    channels = ijk_channels if by_ijk else probabilities

    def blend_where(result: np.ndarray, in_band: np.ndarray) -> np.ndarray:
        """Interpolated labels at these flat source indices; `result` gets them in place."""
        if in_band.size:
            zyx = np.stack(np.unravel_index(in_band, shape)).astype(np.float64)
            points = linear @ zyx + shift[:, None]
            points = points[::-1] if by_ijk else points
            blended = np.stack(
                [
                    ndimage.map_coordinates(channel, points, order=1, mode="nearest")
                    for channel in channels
                ]
            )
            result.ravel()[in_band] = argmax_labels(blended)
        return result

    if np.array_equal(linear, np.diag(np.diag(linear))):
        # Grids with exactly parallel axes (most series): the nearest voxel and the 2x2x2
        # interpolation cell of every source voxel are separable per axis, so the labels and
        # the "cell mixes labels" flags are read by per-axis takes, and exactly the voxels
        # whose cell mixes labels are interpolated (the same voxels as the band test below).
        positions = [linear[a, a] * np.arange(n) + shift[a] for a, n in enumerate(shape)]
        sizes = labels.shape
        nearest = [
            np.clip(np.rint(p), 0, size - 1).astype(np.intp)
            for p, size in zip(positions, sizes, strict=True)
        ]
        cells = [
            np.clip(np.floor(np.clip(p, 0, size - 1)), 0, max(size - 2, 0)).astype(np.intp)
            for p, size in zip(positions, sizes, strict=True)
        ]
        result = take_per_axis(labels, nearest)
        in_band = np.flatnonzero(take_per_axis(mixed_cells(labels), cells))
        if in_band.size:
            where = np.unravel_index(in_band, shape)
            clipped = [np.clip(p, 0, size - 1) for p, size in zip(positions, sizes, strict=True)]
            corner = [cell[at] for cell, at in zip(cells, where, strict=True)]
            fraction = [(c - cell)[at] for c, cell, at in zip(clipped, cells, where, strict=True)]
            view = channels.transpose(0, 3, 2, 1) if by_ijk else channels  # (C, z, y, x)
            blended = blend_separable(view, corner, fraction)
            result.ravel()[in_band] = argmax_labels(blended)
        return result
    band = cube_extreme(labels, np.maximum) != cube_extreme(labels, np.minimum)
    # label and band flag in one uint8 array, so one nearest-neighbour pass serves both
    packed = labels | (band.astype(np.uint8) << 7)
    if np.allclose(linear - np.diag(np.diag(linear)), 0.0, atol=1e-9):
        # Nearly parallel axes: nearest neighbour is still separable per axis.
        axes = [
            np.clip(np.rint(linear[a, a] * np.arange(n) + shift[a]), 0, size - 1).astype(np.intp)
            for a, (n, size) in enumerate(zip(shape, packed.shape, strict=True))
        ]
        on_source = take_per_axis(packed, axes)
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
        points = points[::-1] if by_ijk else points
        # Only points whose 2x2x2 interpolation cell holds two labels can change label.
        mixed = mixed_cells(labels.transpose(2, 1, 0) if by_ijk else labels)
        cells_of_points = tuple(
            np.clip(np.floor(np.clip(axis_points, 0, size - 1)), 0, max(size - 2, 0)).astype(
                np.intp
            )
            for axis_points, size in zip(points, channels.shape[1:], strict=True)
        )
        in_band = in_band[mixed[cells_of_points]]
    return blend_where(result, in_band)


def blend_separable(
    channels: np.ndarray, corner: Sequence[np.ndarray], fraction: Sequence[np.ndarray]
) -> np.ndarray:
    """Each channel of `channels` (C, z, y, x) interpolated linearly at points given per axis
    by the lowest corner of their 2x2x2 cell and the fraction past it (in [0, 1]): what
    `scipy.ndimage.map_coordinates(order=1)` gives inside the grid, with the 8 corners read by
    one `take` each for all channels at once (4-5x faster than a call per channel). Works on
    torch's (C, i, j, k) memory seen as (C, z, y, x) without a copy. An axis of length 1
    reads its single voxel twice."""
    flat, steps = _rows_and_steps(channels)
    base = sum(c.astype(np.intp) * step for c, step in zip(corner, steps, strict=True))
    blended = np.zeros((flat.shape[0], base.size), np.float64)
    for offsets in np.ndindex(2, 2, 2):
        weight = np.ones(base.size, np.float64)
        index = base
        for up, part, step in zip(offsets, fraction, steps, strict=True):
            weight = weight * (part if up else 1.0 - part)
            index = index + step if up else index
        blended += np.take(flat, index, axis=1) * weight
    return blended


def _rows_and_steps(channels: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """One row of memory per channel, and how far one step along z, y and x moves in it."""
    stored = channels.transpose(0, 3, 2, 1)
    if not (channels.flags.c_contiguous or stored.flags.c_contiguous):
        channels = np.ascontiguousarray(channels)
        stored = channels
    elif channels.flags.c_contiguous:
        stored = channels
    steps = [
        0 if size == 1 else stride // channels.itemsize
        for size, stride in zip(channels.shape[1:], channels.strides[1:], strict=True)
    ]
    return stored.reshape(stored.shape[0], -1), steps


def take_per_axis(values: np.ndarray, axes: Sequence[np.ndarray]) -> np.ndarray:
    """``values[np.ix_(*axes)]`` (contiguous) by one `take` per axis, 10x faster than `np.ix_`;
    axes taken whole are skipped. Shrinking axes first, then growing ones from the last axis
    (whose take copies single voxels) to the first (whose take copies whole rows), so the slow
    takes run on the smaller arrays."""
    out = values
    order = sorted(range(values.ndim), key=lambda a: (len(axes[a]) / values.shape[a], -a))
    for axis in order:
        index = axes[axis]
        if len(index) != out.shape[axis] or not np.array_equal(index, np.arange(len(index))):
            out = out.take(index, axis)
    return np.ascontiguousarray(out)


def mixed_cells(labels: np.ndarray) -> np.ndarray:
    """For each cell of 2x2x2 neighbouring voxels (indexed by its lowest corner; an axis of
    length 1 keeps its single index), whether it holds more than one label. A linear blend of
    probabilities whose corners all have arg-max L has arg-max L too."""
    high = low = labels
    for axis in range(labels.ndim):
        if labels.shape[axis] < 2:
            continue
        first = [slice(None)] * labels.ndim
        second = [slice(None)] * labels.ndim
        first[axis], second[axis] = slice(None, -1), slice(1, None)
        high = np.maximum(high[tuple(first)], high[tuple(second)])
        low = np.minimum(low[tuple(first)], low[tuple(second)])
    return high != low


def argmax_labels(channels: np.ndarray) -> np.ndarray:
    """``channels.argmax(axis=0)`` as uint8 (first channel wins ties), by comparing whole
    channels: about 10x faster than numpy's strided arg-max over a short first axis."""
    best = channels[0]
    labels = np.zeros(best.shape, np.uint8)
    for value in range(1, len(channels)):
        better = channels[value] > best
        labels[better] = value
        if value + 1 < len(channels):
            best = np.maximum(best, channels[value])
    return labels


def cube_extreme(values: np.ndarray, pick: Any) -> np.ndarray:
    """Maximum (`pick=np.maximum`) or minimum (`np.minimum`) over each 3x3x...x3 neighbourhood,
    edges repeating the border value: ``scipy.ndimage.maximum_filter(values, 3, mode="nearest")``
    computed as two whole-array operations per axis, about 10x faster on label maps."""
    out = values
    for axis in range(values.ndim):
        if out.shape[axis] < 2:
            continue

        def part(start: int | None, stop: int | None, axis: int = axis) -> tuple[slice, ...]:
            index = [slice(None)] * values.ndim
            index[axis] = slice(start, stop)
            return tuple(index)

        pairs = pick(out[part(None, -1)], out[part(1, None)])  # pairs[i] = pick(v[i], v[i+1])
        result = np.empty_like(out)
        result[part(1, -1)] = pick(pairs[part(None, -1)], pairs[part(1, None)])
        result[part(0, 1)] = pairs[part(0, 1)]
        result[part(-1, None)] = pairs[part(-1, None)]
        out = result
    return out


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
