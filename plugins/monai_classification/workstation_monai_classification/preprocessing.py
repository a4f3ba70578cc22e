"""Between the series' own grid and the axial grid the network reads.

The network sees axial slices with fixed physical pixels (`config.NETWORK_SPACING`), whatever
the series' orientation, pixel size or slice spacing: lesion sizes in mm then mean the same to it
as in training. `network_grid` covers the series' extent with that grid (axis-aligned in LPS, so
columns run to the patient's left and rows to posterior, as an axial image is read);
`to_network` resamples HU onto it and windows them; `to_source` brings a map computed on it back
onto the series' exact grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from workstation.plugins.api import Geometry, Volume

AIR_HU = -1024.0


def network_grid(source: Geometry, spacing: Sequence[float]) -> Geometry:
    """An LPS-aligned grid with `spacing` (x, y, z mm) whose hull contains every voxel centre
    of `source`, centred on it."""
    nz, ny, nx = source.shape
    corners = np.array(
        [[i, j, k] for i in (0, nx - 1) for j in (0, ny - 1) for k in (0, nz - 1)], float
    )
    world = source.index_to_world(corners)
    low, high = world.min(axis=0), world.max(axis=0)
    sizes, origin = [], []
    for axis in range(3):
        extent = float(high[axis] - low[axis])
        step = float(spacing[axis])
        count = max(1, math.ceil(extent / step - 1e-6) + 1)
        sizes.append(count)
        origin.append(float(low[axis]) - ((count - 1) * step - extent) / 2)
    return Geometry((sizes[2], sizes[1], sizes[0]), tuple(spacing), tuple(origin))


def window(hu: np.ndarray, hu_window: Sequence[float]) -> np.ndarray:
    """HU to [0, 1] over `hu_window` (low, high), clipped; float32."""
    low, high = float(hu_window[0]), float(hu_window[1])
    return np.clip((hu.astype(np.float32) - low) / (high - low), 0.0, 1.0)


def edge_padded(array: np.ndarray, geometry: Geometry) -> Volume:
    """`array` on `geometry` with one more voxel on every side repeating the edge values.

    The two grids' hulls differ by up to half a voxel at the borders; linear resampling treats
    anything outside a hull as empty, so without this the outermost slices would come out blank.
    """
    padded = np.pad(array.astype(np.float32, copy=False), 1, mode="edge")
    origin = geometry.index_to_world((-1.0, -1.0, -1.0))
    return Volume(padded, geometry.spacing, tuple(origin), geometry.direction_matrix)


def to_network(volume: Volume, config: dict) -> tuple[np.ndarray, Geometry]:
    """The series as windowed axial slices ``[k, j, i]`` (float32 in [0, 1]) on its network
    grid, and that grid."""
    grid = network_grid(volume.geometry, config["spacing"])
    on_grid = edge_padded(volume.array, volume.geometry).resample_to(
        grid, order=1, fill_value=AIR_HU
    )
    return window(on_grid.array, config["window"]), grid


def to_source(values: np.ndarray, grid: Geometry, source: Volume) -> np.ndarray:
    """A map ``[k, j, i]`` on the network grid, resampled (linearly) onto `source`'s exact grid
    as float32 ``[z, y, x]``."""
    on_grid = edge_padded(values, grid)
    return on_grid.resample_to(source.geometry, order=1, fill_value=0.0).array
