"""What the linked views of one series share: the volume, the crosshair point, the window and the
overlays. Views listen to its signals, so moving the crosshair in one view moves it in all."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from workstation.core.results import HeatMap, LabelMap
from workstation.core.volume import Volume
from workstation.gui.mpr.planes import Plane
from workstation.gui.mpr.slicing import SliceGrid, slice_grid
from workstation.gui.overlays import HeatOverlay, LabelOverlay, Overlay
from workstation.gui.window_level import CT_PRESETS, Window, auto_window, default_window


class ViewerModel(QObject):
    """One series on screen. `cursor` is the crosshair point in LPS mm."""

    cursor_changed = Signal(object)
    display_changed = Signal()
    overlays_changed = Signal()

    def __init__(self, volume: Volume, info: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.volume = volume
        self.info: dict[str, Any] = {**volume.metadata, **(info or {})}
        self.default = default_window(volume.array, volume.metadata)
        self.window: Window = self.default
        self.invert = bool(volume.metadata.get("inverted_monochrome1", False))
        self.colormap = "grey"
        self.show_identity = True
        self.overlays: list[Overlay] = []
        self._grids: dict[Plane, SliceGrid] = {}
        # index <-> LPS for the crosshair, computed once: set_cursor runs on every slice change
        affine = volume.geometry.index_to_world_matrix
        self._axes, self._origin = affine[:3, :3], affine[:3, 3]
        self._axes_inverse_t = np.linalg.inv(self._axes).T
        self._upper_index = np.array(volume.shape[::-1], dtype=float) - 1.0
        nz, ny, nx = volume.shape
        self.cursor = volume.index_to_world(((nx - 1) // 2, (ny - 1) // 2, (nz - 1) // 2))
        finite = volume.array[np.isfinite(volume.array)] if volume.array.dtype.kind == "f" else None
        self.fill_value = float(
            volume.metadata.get(
                "padding_value",
                volume.array.min() if finite is None else (finite.min() if finite.size else 0),
            )
        )

    # --- geometry -------------------------------------------------------------------------
    def grid(self, plane: Plane | str) -> SliceGrid:
        plane = Plane(plane)
        if plane not in self._grids:
            self._grids[plane] = slice_grid(self.volume.geometry, plane)
        return self._grids[plane]

    def set_cursor(self, xyz: np.ndarray | tuple[float, float, float]) -> None:
        """Move the crosshair, kept inside the volume's extent."""
        point = np.asarray(xyz, dtype=float)
        if self.grid(Plane.AXIAL).aligned is not None:  # oblique views span a wider box
            ijk = np.clip(self._index_of(point), 0.0, self._upper_index)
            point = ijk @ self._axes.T + self._origin
        # np.allclose's test, without its per-call overhead (this runs on every slice change)
        if np.all(np.abs(point - self.cursor) <= 1e-9 + 1e-5 * np.abs(self.cursor)):
            return
        self.cursor = point
        self.cursor_changed.emit(point)

    def _index_of(self, xyz: np.ndarray | tuple[float, float, float]) -> np.ndarray:
        """Continuous (i, j, k) of an LPS point (the volume's world_to_index, matrix kept)."""
        return (np.asarray(xyz, dtype=float) - self._origin) @ self._axes_inverse_t

    def cursor_voxel(self) -> tuple[int, int, int]:
        return self.voxel_at(self.cursor)  # type: ignore[return-value]

    def voxel_at(self, xyz: np.ndarray) -> tuple[int, int, int] | None:
        """Nearest (i, j, k) voxel to an LPS point, None outside the volume."""
        ijk = np.rint(self._index_of(xyz)).astype(int)
        nz, ny, nx = self.volume.shape
        if not (0 <= ijk[0] < nx and 0 <= ijk[1] < ny and 0 <= ijk[2] < nz):
            return None
        return int(ijk[0]), int(ijk[1]), int(ijk[2])

    def value_at(self, ijk: tuple[int, int, int]) -> float:
        i, j, k = ijk
        return float(self.volume.array[k, j, i])

    # --- display --------------------------------------------------------------------------
    def set_window(self, window: Window) -> None:
        self.window = window
        self.display_changed.emit()

    def apply_preset(self, name: str) -> None:
        """A CT preset by name, "Auto" (percentiles) or "Default" (the series' own window)."""
        if name == "Auto":
            self.set_window(auto_window(self.volume.array))
        elif name == "Default":
            self.set_window(self.default)
        elif name in CT_PRESETS:
            self.set_window(CT_PRESETS[name])
        else:
            raise KeyError(f"unknown window preset {name!r}")

    def set_invert(self, invert: bool) -> None:
        self.invert = invert
        self.display_changed.emit()

    def set_colormap(self, name: str) -> None:
        self.colormap = name
        self.display_changed.emit()

    def set_show_identity(self, show: bool) -> None:
        self.show_identity = show
        self.display_changed.emit()

    # --- overlays -------------------------------------------------------------------------
    def add_result(self, result: LabelMap | HeatMap, opacity: float = 0.5) -> Overlay:
        """Show a label map or heat map over this series (resampled if on another grid)."""
        grid = self.volume.geometry
        if isinstance(result, LabelMap):
            overlay: Overlay = LabelOverlay.from_result(result, grid, opacity)
        elif isinstance(result, HeatMap):
            overlay = HeatOverlay.from_result(result, grid, opacity)
        else:
            raise TypeError(f"{type(result).__name__} is not an image overlay")
        self.overlays.append(overlay)
        self.overlays_changed.emit()
        return overlay

    def remove_overlay(self, overlay: Overlay) -> None:
        self.overlays.remove(overlay)
        self.overlays_changed.emit()

    def overlay_changed(self) -> None:
        """Call after changing an overlay's opacity, visibility, outline or threshold."""
        self.overlays_changed.emit()
