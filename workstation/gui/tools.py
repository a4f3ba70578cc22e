"""Measuring tools on the views (distance, ellipse, rectangle, polygon) and the measurements
list with CSV export. A finished measurement is drawn on its slice as an editable shape, listed,
and kept in the store for the series; moving or reshaping it re-measures it and updates what is
kept, and Delete (key, context menu or button) removes it from the view, the list and the store.

Polygons are drawn either freehand (drag: the traced outline, thinned to the vertices that
matter) or vertex by vertex (click each vertex; double-click, Enter or a click on the first
vertex closes it; Escape drops it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workstation.gui.measurements import (
    Measurement,
    delete_measurement,
    export_csv,
    load_measurements,
    measure,
    remeasure,
    save_measurement,
    simplify_path,
    update_measurement,
)
from workstation.gui.roi_items import make_shape, set_selected, shape_points
from workstation.gui.view_widget import SliceView

TOOL_PEN = pg.mkPen((255, 220, 0), width=2)
CLOSE_DISTANCE_PX = 8
"""A click this close (screen pixels) to a polygon's first vertex closes the polygon."""
FREEHAND_TOLERANCE = 0.5
"""Largest distance (image pixels) of a dropped freehand point from the kept outline."""


class MeasureTool:
    """Takes the left button of the views while active; `kind` is one of the KINDS."""

    def __init__(self, panel: MeasurementsPanel, kind: str) -> None:
        self.panel, self.kind = panel, kind
        self.points: list[tuple[float, float]] = []
        self.preview: pg.PlotDataItem | None = None
        self._view: SliceView | None = None
        self._clicking = False  # a polygon being placed vertex by vertex

    def __call__(self, phase: str, view: SliceView, point: np.ndarray) -> None:
        column, row, _ = view.grid.from_world(point)
        if phase in ("click", "double"):
            if self.kind == "polygon":
                self._polygon_click(view, (column, row), close=phase == "double")
            return
        if phase == "start":
            self.cancel()
            self.points = [(column, row)]
            self._start_preview(view)
        elif phase == "move" and self.points:
            if self.kind == "polygon":
                self.points.append((column, row))
            else:
                self.points[1:] = [(column, row)]
            self._draw_preview()
        elif phase == "finish" and self.points:
            if self.kind == "polygon":
                self.points.append((column, row))
                self.points = simplify_path(self.points, FREEHAND_TOLERANCE)
            else:
                self.points[1:] = [(column, row)]
            self._finish(view)

    # --- polygons vertex by vertex ----------------------------------------------------------
    def _polygon_click(self, view: SliceView, vertex: tuple[float, float], close: bool) -> None:
        if not self._clicking or self._view is not view:
            self.cancel()
            self._clicking = True
            self.points = [vertex]
            self._start_preview(view)
            return
        if close or (len(self.points) >= 3 and self._near(view, self.points[0], vertex)):
            self.close_polygon()
            return
        if not self._near(view, self.points[-1], vertex):  # a second click on a vertex adds none
            self.points.append(vertex)
            self._draw_preview()

    @staticmethod
    def _near(view: SliceView, a: tuple[float, float], b: tuple[float, float]) -> bool:
        """Whether two (column, row) positions are within a few screen pixels of each other."""
        pa = view.screen_position(view.grid.to_world(*a, view.slice_index))
        pb = view.screen_position(view.grid.to_world(*b, view.slice_index))
        return (pa - pb).manhattanLength() <= CLOSE_DISTANCE_PX

    def close_polygon(self) -> None:
        """Finish a polygon placed by clicks (Enter or double-click); under 3 vertices it is
        dropped."""
        if self._clicking and self._view is not None:
            self._finish(self._view)

    def cancel(self) -> None:
        """Drop what is being drawn (Escape)."""
        if self.preview is not None and self._view is not None:
            self._view.view_box.removeItem(self.preview)
        self.preview, self._view, self._clicking, self.points = None, None, False, []

    # --- drawing ----------------------------------------------------------------------------
    def _start_preview(self, view: SliceView) -> None:
        self._view = view
        self.preview = pg.PlotDataItem(pen=TOOL_PEN)
        self.preview.setZValue(61)
        view.view_box.addItem(self.preview)

    def _draw_preview(self) -> None:
        if self.preview is not None and self._view is not None:
            kind = "open" if self._clicking else self.kind
            xy = outline_points(kind, self.points, self._view.grid.pixel_size)
            self.preview.setData(xy[:, 0], xy[:, 1])

    def _finish(self, view: SliceView) -> None:
        points = list(self.points)
        self.cancel()
        try:
            m = measure(
                self.kind,
                view.grid,
                view.model.volume.array,
                view.slice_index,
                points,
                fill=view.model.fill_value,
            )
        except ValueError:
            return  # a click without a drag, or too few vertices: nothing to measure
        self.panel.add(m)


def outline_points(
    kind: str, points: list[tuple[float, float]], pixel: tuple[float, float]
) -> np.ndarray:
    """The drawn outline in view coordinates (mm in the plane); "open" is a polygon still
    being placed (not closed yet)."""
    sr, sd = pixel
    p = np.asarray(points, dtype=float).reshape(-1, 2) * [sr, sd]
    if kind in ("distance", "open") or len(p) < 2:
        return p
    if kind == "rectangle":
        (x0, y0), (x1, y1) = p[0], p[-1]
        return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]])
    if kind == "ellipse":
        (x0, y0), (x1, y1) = p[0], p[-1]
        t = np.linspace(0, 2 * np.pi, 64)
        return np.column_stack(
            [
                (x0 + x1) / 2 + abs(x1 - x0) / 2 * np.cos(t),
                (y0 + y1) / 2 + abs(y1 - y0) / 2 * np.sin(t),
            ]
        )
    return np.vstack([p, p[:1]])


class MeasurementsPanel(QWidget):
    """The list of a series' measurements, the tool chooser and CSV export."""

    changed = Signal()

    def __init__(self, store_dir: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        self.store_dir = Path(store_dir) if store_dir is not None else None
        self.series_id: str | None = None
        self.views: list[SliceView] = []
        self.measurements: list[Measurement] = []
        self._drawn: list[tuple[SliceView, pg.ROI, Measurement]] = []
        self.tool: MeasureTool | None = None
        self.chooser = QComboBox()
        self.chooser.addItems(["Crosshair", "distance", "ellipse", "rectangle", "polygon"])
        self.chooser.currentTextChanged.connect(self.set_tool)
        self.list = QListWidget()
        self.list.currentRowChanged.connect(self._on_row)
        delete_action = QAction("Delete", self.list)
        delete_action.setShortcuts(
            [QKeySequence(Qt.Key.Key_Delete), QKeySequence(Qt.Key.Key_Backspace)]
        )
        delete_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        delete_action.triggered.connect(self.delete_selected)
        self.list.addAction(delete_action)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        export = QPushButton("Export CSV...")
        export.clicked.connect(self._export_dialog)
        remove = QPushButton("Delete")
        remove.clicked.connect(self.delete_selected)
        buttons = QHBoxLayout()
        buttons.addWidget(remove)
        buttons.addWidget(export)
        layout = QVBoxLayout(self)
        layout.addWidget(self.chooser)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)

    def attach(self, views: list[SliceView], series_id: str | None) -> None:
        """Measure on `views`; load what was kept for `series_id` (None: not kept)."""
        for view, shape, _m in self._drawn:
            if view not in views:
                view.view_box.removeItem(shape)
        self.views, self.series_id = views, series_id
        self.measurements, self._drawn = [], []
        self.list.clear()
        kept = load_measurements(self.store_dir, series_id) if self._keeps() else []
        for m in kept:
            self._show(m)
        for view in views:
            view.model.cursor_changed.connect(lambda _p: self._sync_visibility())
            view.key_pressed.connect(self._on_view_key)
        self.set_tool(self.chooser.currentText())

    def _keeps(self) -> bool:
        return self.store_dir is not None and self.series_id is not None

    def set_tool(self, name: str) -> None:
        if self.tool is not None:
            self.tool.cancel()
        self.tool = None if name == "Crosshair" else MeasureTool(self, name)
        tool: Any = self.tool
        for view in self.views:
            view.tool = tool

    def add(self, m: Measurement) -> None:
        if self._keeps():
            save_measurement(self.store_dir, self.series_id, m)  # type: ignore[arg-type]
        self._show(m)
        self.list.setCurrentRow(len(self.measurements) - 1)
        self.changed.emit()

    def _show(self, m: Measurement) -> None:
        self.measurements.append(m)
        self.list.addItem(self._label(m))
        self.list.item(self.list.count() - 1).setToolTip(self._label(m))  # the dock is narrow
        for view in self.views:
            if view.plane.value == m.plane:
                shape = make_shape(m.kind, m.points, view.grid.pixel_size)
                shape.sigRegionChanged.connect(lambda s, v=view, m=m: self._edited(v, s, m, False))
                shape.sigRegionChangeFinished.connect(
                    lambda s, v=view, m=m: self._edited(v, s, m, True)
                )
                shape.sigClicked.connect(lambda _s, _ev, m=m: self.select(m))
                shape.sigRegionChangeStarted.connect(lambda _s, m=m: self.select(m))
                shape.sigRemoveRequested.connect(lambda _s, m=m: self.delete(m))
                view.view_box.addItem(shape)
                self._drawn.append((view, shape, m))
        self._sync_visibility()

    @staticmethod
    def _label(m: Measurement) -> str:
        return f"{m.plane} slice {m.slice + 1}: {m.summary()}"

    def _sync_visibility(self) -> None:
        for view, shape, m in self._drawn:
            shape.setVisible(view.slice_index == m.slice)

    # --- editing ------------------------------------------------------------------------------
    def _edited(self, view: SliceView, shape: pg.ROI, m: Measurement, finished: bool) -> None:
        """A shape was moved or reshaped: new figures now, kept when the drag ends."""
        if m not in self.measurements:
            return
        points = shape_points(m.kind, shape, view.grid.pixel_size)
        try:
            edited = remeasure(m, view.grid, view.model.volume.array, points, view.model.fill_value)
        except ValueError:
            return  # e.g. a polygon whose vertices were removed below three
        if edited.points == m.points and edited.stats == m.stats and not finished:
            return
        m.points, m.stats = edited.points, edited.stats
        item = self.list.item(self.measurements.index(m))
        item.setText(self._label(m))
        item.setToolTip(self._label(m))
        if finished:
            if self._keeps() and m.id is not None:
                update_measurement(self.store_dir, m)  # type: ignore[arg-type]
            self.changed.emit()

    def select(self, m: Measurement) -> None:
        """Make `m` the current measurement (highlighted; Delete removes it)."""
        if m in self.measurements:
            self.list.setCurrentRow(self.measurements.index(m))

    def selected(self) -> Measurement | None:
        row = self.list.currentRow()
        return self.measurements[row] if 0 <= row < len(self.measurements) else None

    def shapes_of(self, m: Measurement) -> list[tuple[SliceView, pg.ROI]]:
        """The shapes drawn for `m`, with their views."""
        return [(view, shape) for view, shape, d in self._drawn if d is m]

    def _on_row(self, row: int) -> None:
        chosen = self.measurements[row] if 0 <= row < len(self.measurements) else None
        for view, shape, m in self._drawn:
            set_selected(shape, m is chosen)
            if m is chosen and view.slice_index != m.slice:
                view.set_slice(m.slice)  # show the chosen measurement's slice

    def _on_view_key(self, key: int) -> None:
        if key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.delete_selected()
        elif self.tool is not None and key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.tool.close_polygon()
        elif self.tool is not None and key == Qt.Key.Key_Escape:
            self.tool.cancel()

    def delete_selected(self) -> None:
        m = self.selected()
        if m is not None:
            self.delete(m)

    def delete(self, m: Measurement) -> None:
        """Remove `m` from the views, the list and the store."""
        if m not in self.measurements:
            return
        row = self.measurements.index(m)
        self.measurements.pop(row)
        self.list.takeItem(row)
        for entry in [d for d in self._drawn if d[2] is m]:
            entry[0].view_box.removeItem(entry[1])
            self._drawn.remove(entry)
        if self._keeps() and m.id is not None:
            delete_measurement(self.store_dir, m.id)  # type: ignore[arg-type]
        self.changed.emit()

    def export(self, path: str | os.PathLike[str]) -> None:
        export_csv(self.measurements, path)

    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export measurements", "measurements.csv", "CSV (*.csv)"
        )
        if path:
            self.export(path)
