"""Measuring tools on the views (distance, ellipse, rectangle, polygon) and the measurements
list with CSV export. A finished measurement is drawn on its slice, listed, and kept in the
store for the series."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
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
    save_measurement,
)
from workstation.gui.view_widget import SliceView

TOOL_PEN = pg.mkPen((255, 220, 0), width=2)


class MeasureTool:
    """Takes the left button of the views while active; `kind` is one of the KINDS."""

    def __init__(self, panel: MeasurementsPanel, kind: str) -> None:
        self.panel, self.kind = panel, kind
        self.points: list[tuple[float, float]] = []
        self.preview: pg.PlotDataItem | None = None

    def __call__(self, phase: str, view: SliceView, point: np.ndarray) -> None:
        column, row, _ = view.grid.from_world(point)
        if phase == "start":
            self.points = [(column, row)]
            self.preview = pg.PlotDataItem(pen=TOOL_PEN)
            view.view_box.addItem(self.preview)
        elif phase == "move" and self.points:
            if self.kind == "polygon":
                self.points.append((column, row))
            else:
                self.points[1:] = [(column, row)]
            self._draw_preview(view)
        elif phase == "finish" and self.points:
            if self.kind != "polygon":
                self.points[1:] = [(column, row)]
            if self.preview is not None:
                view.view_box.removeItem(self.preview)
                self.preview = None
            try:
                m = measure(
                    self.kind,
                    view.grid,
                    view.model.volume.array,
                    view.slice_index,
                    self.points,
                    fill=view.model.fill_value,
                )
            except ValueError:
                return  # a click without a drag: nothing to measure
            self.panel.add(m)

    def _draw_preview(self, view: SliceView) -> None:
        if self.preview is not None:
            xy = outline_points(self.kind, self.points, view.grid.pixel_size)
            self.preview.setData(xy[:, 0], xy[:, 1])


def outline_points(
    kind: str, points: list[tuple[float, float]], pixel: tuple[float, float]
) -> np.ndarray:
    """The drawn outline in view coordinates (mm in the plane)."""
    sr, sd = pixel
    p = np.asarray(points, dtype=float) * [sr, sd]
    if kind == "distance" or len(p) < 2:
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
        self._drawn: list[tuple[SliceView, pg.PlotDataItem, Measurement]] = []
        self.chooser = QComboBox()
        self.chooser.addItems(["Crosshair", "distance", "ellipse", "rectangle", "polygon"])
        self.chooser.currentTextChanged.connect(self.set_tool)
        self.list = QListWidget()
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
        self.views, self.series_id = views, series_id
        self.measurements, self._drawn = [], []
        self.list.clear()
        kept = load_measurements(self.store_dir, series_id) if self._keeps() else []
        for m in kept:
            self._show(m)
        for view in views:
            view.model.cursor_changed.connect(lambda _p: self._sync_visibility())
        self.set_tool(self.chooser.currentText())

    def _keeps(self) -> bool:
        return self.store_dir is not None and self.series_id is not None

    def set_tool(self, name: str) -> None:
        tool: Any = None if name == "Crosshair" else MeasureTool(self, name)
        for view in self.views:
            view.tool = tool

    def add(self, m: Measurement) -> None:
        if self._keeps():
            save_measurement(self.store_dir, self.series_id, m)  # type: ignore[arg-type]
        self._show(m)
        self.changed.emit()

    def _show(self, m: Measurement) -> None:
        self.measurements.append(m)
        self.list.addItem(f"{m.plane} slice {m.slice + 1}: {m.summary()}")
        for view in self.views:
            if view.plane.value == m.plane:
                xy = outline_points(m.kind, m.points, view.grid.pixel_size)
                item = pg.PlotDataItem(xy[:, 0], xy[:, 1], pen=TOOL_PEN)
                item.setZValue(60)
                view.view_box.addItem(item)
                self._drawn.append((view, item, m))
        self._sync_visibility()

    def _sync_visibility(self) -> None:
        for view, item, m in self._drawn:
            item.setVisible(view.slice_index == m.slice)

    def delete_selected(self) -> None:
        row = self.list.currentRow()
        if row < 0:
            return
        m = self.measurements.pop(row)
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
