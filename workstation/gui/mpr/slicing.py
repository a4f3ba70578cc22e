"""Slices of a volume in a patient plane, for any acquisition orientation.

A `SliceGrid` is the stack of 2-D pixel grids a view shows: pixel (column c, row r) of slice s sits
at ``origin + c*sr*right + r*sd*down + s*sn*normal`` in LPS mm. For an acquisition whose axes are
parallel to the patient axes (any axial, coronal or sagittal series, in any row/column order) the
grid is the voxel grid itself, so a slice is a numpy view of the array (a transpose and flips, no
copy). For an oblique acquisition the grid is laid in the true patient plane over the volume's
extent and each slice is reformatted with interpolation when it is shown.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workstation.core.volume import Geometry
from workstation.gui.mpr.planes import PLANE_AXES, Plane, PlaneAxes

ALIGNED_TOLERANCE = 1e-4
"""Largest direction-cosine deviation still treated as axis-aligned (no interpolation)."""


@dataclass(frozen=True)
class _AxisMap:
    """How one screen axis walks the array: which array axis (0=z, 1=y, 2=x), step and start."""

    array_axis: int
    step: int
    start: int


@dataclass(frozen=True)
class SliceGrid:
    """The pixels a view of `plane` shows for a volume on `geometry`."""

    plane: Plane
    geometry: Geometry
    origin: np.ndarray  # LPS of pixel (0, 0) of slice 0
    axes: PlaneAxes
    spacing: tuple[float, float, float]  # (right, down, normal) mm
    shape: tuple[int, int, int]  # (slices, rows, columns)
    aligned: tuple[_AxisMap, _AxisMap, _AxisMap] | None  # (columns, rows, slices) when a view

    @property
    def slices(self) -> int:
        return self.shape[0]

    @property
    def rows(self) -> int:
        return self.shape[1]

    @property
    def columns(self) -> int:
        return self.shape[2]

    @property
    def pixel_size(self) -> tuple[float, float]:
        """(width, height) of one screen pixel in mm: the aspect the view must keep."""
        return self.spacing[0], self.spacing[1]

    # --- coordinates ----------------------------------------------------------------------
    def to_world(self, column: float, row: float, slice_index: float) -> np.ndarray:
        sr, sd, sn = self.spacing
        return (
            self.origin
            + column * sr * self.axes.right
            + row * sd * self.axes.down
            + slice_index * sn * self.axes.normal
        )

    def from_world(self, xyz: np.ndarray | tuple[float, float, float]) -> np.ndarray:
        """Continuous (column, row, slice) of an LPS point."""
        d = np.asarray(xyz, dtype=float) - self.origin
        sr, sd, sn = self.spacing
        return np.array(
            [d @ self.axes.right / sr, d @ self.axes.down / sd, d @ self.axes.normal / sn]
        )

    def nearest_slice(self, xyz: np.ndarray | tuple[float, float, float]) -> int:
        s = round(float(self.from_world(xyz)[2]))
        return min(max(s, 0), self.slices - 1)

    # --- pixels ---------------------------------------------------------------------------
    def extract(
        self, array: np.ndarray, slice_index: int, order: int = 1, fill: float = 0.0
    ) -> np.ndarray:
        """Slice `slice_index` of `array` (on this grid's volume geometry) as ``[row, column]``.

        Aligned grids return a view of `array`; oblique ones interpolate (`order` 0 for labels).
        """
        if not 0 <= slice_index < self.slices:
            raise IndexError(f"slice {slice_index} outside 0..{self.slices - 1}")
        if self.aligned is not None:
            return self._view(array, slice_index)
        return self._reformat(array, slice_index, order, fill)

    def _view(self, array: np.ndarray, s: int) -> np.ndarray:
        col, row, sl = self.aligned  # type: ignore[misc]
        index: list[slice | int] = [slice(None)] * 3
        index[sl.array_axis] = sl.start + sl.step * s
        plane = array[tuple(index)]
        if row.array_axis > col.array_axis:
            plane = plane.T
        if row.step < 0:
            plane = plane[::-1, :]
        if col.step < 0:
            plane = plane[:, ::-1]
        return plane

    def _reformat(self, array: np.ndarray, s: int, order: int, fill: float) -> np.ndarray:
        from scipy import ndimage

        rows, cols = self.rows, self.columns
        r, c = np.mgrid[0:rows, 0:cols].astype(np.float64)
        sr, sd, sn = self.spacing
        world = (
            self.origin[None, None, :]
            + (c * sr)[..., None] * self.axes.right
            + (r * sd)[..., None] * self.axes.down
            + (s * sn) * self.axes.normal
        )
        ijk = self.geometry.world_to_index(world.reshape(-1, 3))
        coords = np.stack([ijk[:, 2], ijk[:, 1], ijk[:, 0]])
        out_dtype = array.dtype if order == 0 else np.float32
        values = ndimage.map_coordinates(
            array, coords, order=order, mode="constant", cval=fill, output=out_dtype
        )
        return values.reshape(rows, cols)


def slice_grid(geometry: Geometry, plane: Plane | str) -> SliceGrid:
    """The grid a view of `plane` shows for a volume on `geometry`."""
    plane = Plane(plane)
    axes = PLANE_AXES[plane]
    aligned = _aligned_grid(geometry, plane, axes)
    return aligned if aligned is not None else _oblique_grid(geometry, plane, axes)


def _aligned_grid(geometry: Geometry, plane: Plane, axes: PlaneAxes) -> SliceGrid | None:
    direction = geometry.direction_matrix
    nz, ny, nx = geometry.shape
    counts = (nx, ny, nz)  # per index axis i, j, k
    maps: list[_AxisMap] = []
    spacing: list[float] = []
    shape: list[int] = []
    first_index = np.zeros(3)
    for screen_axis in (axes.right, axes.down, axes.normal):
        cosines = direction.T @ screen_axis  # how each index axis follows this screen axis
        index_axis = int(np.argmax(np.abs(cosines)))
        if abs(abs(cosines[index_axis]) - 1.0) > ALIGNED_TOLERANCE:
            return None
        step = 1 if cosines[index_axis] > 0 else -1
        start = 0 if step > 0 else counts[index_axis] - 1
        first_index[index_axis] = start
        maps.append(_AxisMap(array_axis=2 - index_axis, step=step, start=start))
        spacing.append(geometry.spacing[index_axis])
        shape.append(counts[index_axis])
    origin = geometry.index_to_world(first_index)
    return SliceGrid(
        plane=plane,
        geometry=geometry,
        origin=origin,
        axes=axes,
        spacing=(spacing[0], spacing[1], spacing[2]),
        shape=(shape[2], shape[1], shape[0]),
        aligned=(maps[0], maps[1], maps[2]),
    )


def _oblique_grid(geometry: Geometry, plane: Plane, axes: PlaneAxes) -> SliceGrid:
    nz, ny, nx = geometry.shape
    corners = np.array(
        [[i, j, k] for i in (0, nx - 1) for j in (0, ny - 1) for k in (0, nz - 1)], dtype=float
    )
    world = geometry.index_to_world(corners)
    basis = np.stack([axes.right, axes.down, axes.normal])  # rows: screen axes
    projected = world @ basis.T
    low, high = projected.min(axis=0), projected.max(axis=0)
    step = float(min(geometry.spacing))
    counts = np.floor((high - low) / step + 1e-6).astype(int) + 1
    origin = low @ basis  # basis is orthonormal: back to LPS
    return SliceGrid(
        plane=plane,
        geometry=geometry,
        origin=origin,
        axes=axes,
        spacing=(step, step, step),
        shape=(int(counts[2]), int(counts[1]), int(counts[0])),
        aligned=None,
    )
