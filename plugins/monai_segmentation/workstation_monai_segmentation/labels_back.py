"""Labels from the network's grid back onto the series' own grid.

The label map must land on the exact grid of the source series (same shape, spacing, origin
and direction), oblique or anisotropic alike, as if every class-probability map had been
resampled linearly onto it and the arg-max taken there, but without resampling C float maps
onto a grid that may be 10x larger than the network's. Labels are read by nearest neighbour;
only source voxels whose 2x2x2 interpolation cell on the network grid mixes labels can differ
from that, and only they are interpolated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from workstation.plugins.api import Geometry

CELL_BLOCK_VALUES = 1 << 20
"""Interpolated values (classes x source voxels) blended at once: beyond the label maps, the
blend holds 8 bytes per mixed network cell plus a few blocks of this size."""

MAX_CELL_POINTS = 4096
"""The most source voxels the blend by cells pads one network cell's box to (the product of
the widest cell along each axis): finer source grids, e.g. 20 x 20 x 11 voxels per network
cell, are blended voxel by voxel (about 10x slower per voxel)."""

PARALLEL_TOLERANCE = 1e-6
"""Voxels the source grid may drift off the network's axes across its whole extent and still
be read per axis: an oblique series keeps its own axes on the network grid, up to rounding."""


def labels_to_source_grid(
    scores: np.ndarray,
    network_grid: Geometry,
    source_grid: Geometry,
    *,
    logits: bool = False,
) -> np.ndarray:
    """Arg-max of the class maps (C, z, y, x) on `network_grid`, read on every voxel of
    `source_grid` as if the probability maps had been resampled linearly first (border values
    past the network grid's edge, as in the forward resampling), at a fraction of the cost.

    `scores` are class probabilities, or with `logits=True` the network's raw outputs: their
    arg-max is the same, and the softmax is taken only at the network voxels whose
    probabilities are blended. (C, i, j, k) memory from torch seen as (C, z, y, x) is read
    without a copy."""
    if scores.shape[0] > 128:
        classes = scores.shape[0]
        raise ValueError(f"the network gives {classes} classes; label maps hold at most 128")
    network_inv = np.linalg.inv(network_grid.index_to_world_matrix)
    ijk_map = network_inv @ source_grid.index_to_world_matrix  # source (i, j, k) -> network
    flip = np.eye(4)[[2, 1, 0, 3]]
    zyx_map = flip @ ijk_map @ flip
    linear, shift = zyx_map[:3, :3], zyx_map[:3, 3]
    labels = network_labels(scores)
    shape = tuple(int(n) for n in source_grid.shape)
    off_axes = np.abs(linear - np.diag(np.diag(linear))).max()
    if off_axes * max(shape) < PARALLEL_TOLERANCE:
        return _labels_on_parallel_grid(scores, labels, np.diag(linear), shift, shape, logits)
    probabilities = softmax_channels(scores) if logits else scores
    return _labels_on_tilted_grid(probabilities, labels, linear, shift, shape)


def network_labels(scores: np.ndarray) -> np.ndarray:
    """Arg-max labels (z, y, x), C-contiguous, of (C, z, y, x) scores in either memory order:
    computed in the scores' own memory order, then one transposing copy of the uint8 labels
    (by torch: half the time of numpy's)."""
    ijk = scores.transpose(0, 3, 2, 1)
    if ijk.flags.c_contiguous and not scores.flags.c_contiguous:
        return torch.from_numpy(argmax_labels(ijk)).permute(2, 1, 0).contiguous().numpy()
    return argmax_labels(scores)


def softmax_channels(scores: np.ndarray) -> np.ndarray:
    """Softmax over the first axis, in the scores' own memory order."""
    return torch.softmax(torch.from_numpy(scores), dim=0).numpy()


def _labels_on_parallel_grid(
    scores: np.ndarray,
    labels: np.ndarray,
    scale: np.ndarray,
    shift: np.ndarray,
    shape: tuple[int, ...],
    logits: bool,
) -> np.ndarray:
    """Grids with exactly parallel axes (most series): the nearest network voxel and the 2x2x2
    interpolation cell of every source voxel are separable per axis, so labels are read by
    per-axis takes and the voxels of cells that mix labels are found and blended cell by cell."""
    positions = [scale[a] * np.arange(n) + shift[a] for a, n in enumerate(shape)]
    sizes = labels.shape
    clipped = [np.clip(p, 0, size - 1) for p, size in zip(positions, sizes, strict=True)]
    nearest = [np.rint(c).astype(np.intp) for c in clipped]
    cells = [
        np.clip(np.floor(c), 0, max(size - 2, 0)).astype(np.intp)
        for c, size in zip(clipped, sizes, strict=True)
    ]
    fraction = [c - cell for c, cell in zip(clipped, cells, strict=True)]
    result = take_per_axis(labels, nearest)
    blend_mixed_cells(scores, mixed_cells(labels), cells, fraction, result, logits=logits)
    return result


def blend_mixed_cells(
    scores: np.ndarray,
    mixed: np.ndarray,
    cells: Sequence[np.ndarray],
    fraction: Sequence[np.ndarray],
    result: np.ndarray,
    *,
    logits: bool = False,
) -> None:
    """Write into `result` (the source grid's labels, C-contiguous) the arg-max of the
    linearly interpolated probabilities at every source voxel whose cell is mixed.

    `cells[a]` / `fraction[a]` give, per source index along axis a, the lowest corner of its
    cell on the network grid and the fraction past it. The source voxels of one network cell
    form a small box (a range per axis), and all of them share the cell's 8 corners: the
    corners are read once per cell and interpolated one axis at a time over the box (a few
    operations per voxel, not 8 reads of every class per voxel)."""
    if not result.flags.c_contiguous:
        raise ValueError("the labels to blend into must be C-contiguous (written by flat index)")
    axes = [
        _axis_parts(cell, part, count)
        for cell, part, count in zip(cells, fraction, mixed.shape, strict=True)
    ]
    box = int(np.prod([axis.index.shape[1] for axis in axes]))
    if box > MAX_CELL_POINTS:
        _blend_points(scores, mixed, cells, fraction, result, logits)
        return
    mixed_at = np.flatnonzero(mixed)  # 8 bytes per mixed cell; all else is made per block
    blend = _BoxBlend(scores, axes, result, logits)
    block = max(1, CELL_BLOCK_VALUES // (scores.shape[0] * box))
    for start in range(0, mixed_at.size, block):
        where = np.unravel_index(mixed_at[start : start + block], mixed.shape)
        blend(*_cell_parts(where, axes))


def _cell_parts(
    where: tuple[np.ndarray, ...], axes: Sequence[_AxisParts]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The lowest corners of these cells and, per axis, the part of the cell's source indices
    each box covers. Cells at the grid's edges also hold the source voxels clamped onto them:
    their boxes come in several parts, each blended like a cell of its own."""
    corners: list[list[np.ndarray]] = [[], [], []]
    parts: list[list[np.ndarray]] = [[], [], []]
    for pick in np.ndindex(
        *(int(axis.parts[cell].max()) for axis, cell in zip(axes, where, strict=True))
    ):
        chosen = np.ones(where[0].size, bool)
        for axis, cell, part in zip(axes, where, pick, strict=True):
            if part:
                chosen &= axis.parts[cell] > part
        for a, (axis, cell, part) in enumerate(zip(axes, where, pick, strict=True)):
            corners[a].append(cell[chosen] if any(pick) else cell)
            parts[a].append(axis.first[corners[a][-1]] + part)
    return [np.concatenate(c) for c in corners], [np.concatenate(p) for p in parts]


@dataclass(frozen=True)
class _AxisParts:
    """Along one axis, the source indices of each network cell in parts of at most `width`
    (the most an inner cell holds; edge cells also hold the voxels clamped onto them)."""

    index: np.ndarray  # (parts, width) source indices, -1 where padded
    weight: np.ndarray  # (parts, width) fraction past the cell's lower corner, 0 where padded
    first: np.ndarray  # (cells,) each cell's first part
    parts: np.ndarray  # (cells,) how many parts each cell has


def _axis_parts(cells: np.ndarray, fraction: np.ndarray, count: int) -> _AxisParts:
    per_cell = np.bincount(cells, minlength=count)
    inner = per_cell[1:-1] if count > 2 else per_cell
    width = max(int(inner.max()), 1)
    parts = np.maximum(-(-per_cell // width), 1)
    first = np.cumsum(parts) - parts
    order = np.argsort(cells, kind="stable")  # source indices grouped by cell
    start = np.cumsum(per_cell) - per_cell
    owner = np.repeat(np.arange(count), parts)
    rank = (np.arange(int(parts.sum())) - first[owner])[:, None] * width + np.arange(width)
    present = rank < per_cell[owner][:, None]
    taken = np.minimum(start[owner][:, None] + rank, len(order) - 1)
    index = np.where(present, order[taken], -1)
    weight = np.where(present, fraction[np.maximum(index, 0)], 0.0)
    return _AxisParts(index, weight, first, parts)


class _BoxBlend:
    """Blends the boxes of mixed cells into the label map, in float32 by torch as MONAI's own
    resampling: a label can differ from a float64 blend only where two classes tie within
    float32 rounding. What every block shares is prepared once."""

    def __init__(
        self, scores: np.ndarray, axes: Sequence[_AxisParts], result: np.ndarray, logits: bool
    ) -> None:
        flat, self.steps = _rows_and_steps(scores)
        self.rows = torch.from_numpy(flat).float()  # one row of memory per class
        steps = self.steps
        self.offsets = [
            dz * steps[0] + dy * steps[1] + dx * steps[2] for dz, dy, dx in np.ndindex(2, 2, 2)
        ]
        # per axis: where each part's voxels lie in the flat result (negative where padded),
        # and their fractions past the cell's lower corner
        scales = (result.shape[1] * result.shape[2], result.shape[2], 1)
        self.starts = [
            np.where(axis.index >= 0, axis.index * scale, -(1 << 40))
            for axis, scale in zip(axes, scales, strict=True)
        ]
        self.fractions = [torch.from_numpy(axis.weight.astype(np.float32)) for axis in axes]
        self.labels = result.reshape(-1)
        self.logits = logits

    def __call__(self, corner: Sequence[np.ndarray], parts: Sequence[np.ndarray]) -> None:
        """Blend the boxes of the cells with these lowest corners (z, y, x), given the part of
        each cell's source indices along each axis."""
        classes, steps = self.rows.shape[0], self.steps
        base = torch.from_numpy(corner[0] * steps[0] + corner[1] * steps[1] + corner[2] * steps[2])
        values = torch.stack([self.rows.index_select(1, base + offset) for offset in self.offsets])
        if self.logits:
            values = torch.softmax(values, dim=1)  # (8, C, n)
        values = values.reshape(2, 2, 2, classes, -1)  # cells last: every step runs along them
        wz, wy, wx = (
            w[torch.from_numpy(p)].T.contiguous()  # (width, n)
            for w, p in zip(self.fractions, parts, strict=True)
        )
        along_z = torch.lerp(values[0][None], values[1][None], wz[:, None, None, None])
        along_y = torch.lerp(along_z[:, 0, None], along_z[:, 1, None], wy[None, :, None, None])
        along_x = torch.lerp(
            along_y[:, :, 0, None], along_y[:, :, 1, None], wx[None, None, :, None]
        )
        # (z, y, x, C, n) over each cell's box -> labels (z, y, x, n)
        blended = argmax_labels(along_x.numpy().transpose(3, 0, 1, 2, 4))
        tz, ty, tx = (start[p].T for start, p in zip(self.starts, parts, strict=True))
        target = tz[:, None, None, :] + ty[None, :, None, :] + tx[None, None, :, :]
        inside = target >= 0
        self.labels[target[inside]] = blended[inside]


def _blend_points(
    scores: np.ndarray,
    mixed: np.ndarray,
    cells: Sequence[np.ndarray],
    fraction: Sequence[np.ndarray],
    result: np.ndarray,
    logits: bool,
) -> None:
    """The blend voxel by voxel, for source grids far finer than the network's: slab by slab
    of source planes, the voxels whose cell is mixed are listed, then their 8 corners read and
    weighted, a block of voxels at a time."""
    flat, steps = _rows_and_steps(scores)
    plane = result.shape[1] * result.shape[2]
    rows = max(1, CELL_BLOCK_VALUES // plane)
    block = max(1, CELL_BLOCK_VALUES // flat.shape[0])
    labels = result.reshape(-1)
    for first_row in range(0, result.shape[0], rows):
        slab = slice(first_row, first_row + rows)
        in_slab = np.flatnonzero(take_per_axis(mixed, [cells[0][slab], cells[1], cells[2]]))
        for start in range(0, in_slab.size, block):
            chosen = in_slab[start : start + block] + first_row * plane
            points = np.unravel_index(chosen, result.shape)
            base = sum(c[at] * step for c, at, step in zip(cells, points, steps, strict=True))
            parts = [part[at] for part, at in zip(fraction, points, strict=True)]
            blended = np.zeros((flat.shape[0], chosen.size), np.float64)
            for offsets in np.ndindex(2, 2, 2):
                weight = np.ones(chosen.size, np.float64)
                index = base
                for up, part, step in zip(offsets, parts, steps, strict=True):
                    weight = weight * (part if up else 1.0 - part)
                    index = index + step if up else index
                values = np.take(flat, index, axis=1).astype(np.float64)
                blended += (_softmax(values, axis=0) if logits else values) * weight
            labels[chosen] = argmax_labels(blended)


def _labels_on_tilted_grid(
    probabilities: np.ndarray,
    labels: np.ndarray,
    linear: np.ndarray,
    shift: np.ndarray,
    shape: tuple[int, ...],
) -> np.ndarray:
    """Grids whose axes are not parallel to the network's: nearest labels through one affine
    index map. Where all 3x3x3 network neighbours of a point's nearest network voxel share one
    label, every linear blend of their probabilities keeps it; of the thin band where labels
    change, only points whose 2x2x2 cell mixes labels are interpolated."""
    from scipy import ndimage

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
    if not in_band.size:
        return result
    # map_coordinates reads each class map in its own memory order: torch's (i, j, k)
    ijk_channels = probabilities.transpose(0, 3, 2, 1)
    by_ijk = ijk_channels.flags.c_contiguous and not probabilities.flags.c_contiguous
    channels = ijk_channels if by_ijk else probabilities
    zyx = np.stack(np.unravel_index(in_band, shape)).astype(np.float64)
    points = linear @ zyx + shift[:, None]
    # Only points whose 2x2x2 interpolation cell holds two labels can change label.
    mixed = mixed_cells(labels)
    cells_of_points = tuple(
        np.clip(np.floor(np.clip(axis_points, 0, size - 1)), 0, max(size - 2, 0)).astype(np.intp)
        for axis_points, size in zip(points, labels.shape, strict=True)
    )
    keep = mixed[cells_of_points]
    in_band, points = in_band[keep], points[:, keep]
    if in_band.size:
        points = points[::-1] if by_ijk else points
        blended = np.stack(
            [
                ndimage.map_coordinates(channel, points, order=1, mode="nearest")
                for channel in channels
            ]
        )
        result.ravel()[in_band] = argmax_labels(blended)
    return result


def _softmax(values: np.ndarray, axis: int) -> np.ndarray:
    """Softmax along `axis`, in place on a float64 array."""
    values -= values.max(axis=axis, keepdims=True)
    np.exp(values, out=values)
    values /= values.sum(axis=axis, keepdims=True)
    return values


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
