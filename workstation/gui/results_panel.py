"""The results panel: overlay controls (visibility per label, opacity, fill or outline, heat-map
threshold), classification probabilities as pyqtgraph bars, tables and reports as text."""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QScrollArea,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from workstation.core.results import Classification, Measurements, Report, Result
from workstation.gui.overlays import HeatOverlay, LabelOverlay
from workstation.gui.viewer_model import ViewerModel


class ResultsPanel(QScrollArea):
    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.body = QWidget()
        self.column = QVBoxLayout(self.body)
        self.column.addStretch(1)
        self.setWidget(self.body)
        self.model: ViewerModel | None = None
        self.bar_plots: list[pg.PlotWidget] = []

    def set_model(self, model: ViewerModel) -> None:
        self.model = model
        while self.column.count() > 1:
            item = self.column.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        self.bar_plots = []
        model.overlays_changed.connect(self._sync_overlays)
        self._overlay_boxes: dict[int, QGroupBox] = {}

    def _insert(self, widget: QWidget) -> None:
        self.column.insertWidget(self.column.count() - 1, widget)

    def _sync_overlays(self) -> None:
        if self.model is None:
            return
        for overlay in self.model.overlays:
            if id(overlay) not in self._overlay_boxes:
                box = self._overlay_controls(overlay)
                self._overlay_boxes[id(overlay)] = box
                self._insert(box)

    def _overlay_controls(self, overlay: LabelOverlay | HeatOverlay) -> QGroupBox:
        box = QGroupBox(overlay.name + (" (resampled)" if overlay.resampled else ""))
        form = QFormLayout(box)
        shown = QCheckBox("shown")
        shown.setChecked(overlay.visible)
        shown.toggled.connect(lambda on: (setattr(overlay, "visible", on), self._changed()))
        form.addRow(shown)
        opacity = QSlider(Qt.Orientation.Horizontal)
        opacity.setRange(0, 100)
        opacity.setValue(int(overlay.opacity * 100))
        opacity.valueChanged.connect(
            lambda v: (setattr(overlay, "opacity", v / 100), self._changed())
        )
        form.addRow("Opacity", opacity)
        if isinstance(overlay, LabelOverlay):
            outline = QCheckBox("outline only")
            outline.toggled.connect(lambda on: (setattr(overlay, "outline", on), self._changed()))
            form.addRow(outline)
            for entry in overlay.legend:
                r, g, b = entry.color
                check = QCheckBox(f"{entry.name}  {entry.volume_ml:.2f} mL")
                check.setChecked(entry.visible)
                check.setStyleSheet(f"QCheckBox {{ color: rgb({r},{g},{b}); }}")
                check.toggled.connect(
                    lambda on, v=entry.value: (overlay.set_label_visible(v, on), self._changed())
                )
                form.addRow(check)
        else:
            threshold = QDoubleSpinBox()
            lo, hi = overlay.value_range
            threshold.setRange(lo, hi)
            threshold.setDecimals(3)
            threshold.setSingleStep((hi - lo) / 20 or 0.1)
            threshold.setValue(lo)
            threshold.valueChanged.connect(
                lambda v: (setattr(overlay, "threshold", v), self._changed())
            )
            form.addRow(f"Threshold {overlay.units}".strip(), threshold)
        return box

    def _changed(self) -> None:
        self.changed.emit()

    def add_result(self, result: Result) -> None:
        if isinstance(result, Classification):
            self._insert(self._classification(result))
            if result.explanation is not None and self.model is not None:
                self.model.add_result(result.explanation)
        elif isinstance(result, Measurements):
            rows = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                for row in result.rows
            )
            head = "".join(
                f"<th>{html.escape(c)} {html.escape(result.units.get(c, ''))}</th>"
                for c in result.columns
            )
            self._insert(
                QLabel(f"<b>{html.escape(result.name)}</b><table><tr>{head}</tr>{rows}</table>")
            )
        elif isinstance(result, Report):
            label = QLabel(result.text)
            label.setTextFormat(Qt.TextFormat.MarkdownText)
            label.setWordWrap(True)
            self._insert(label)

    def _classification(self, result: Classification) -> QWidget:
        box = QGroupBox(f"{result.name}: {result.predicted}")
        layout = QVBoxLayout(box)
        plot = pg.PlotWidget()
        plot.setMinimumHeight(40 + 28 * len(result.labels))
        probabilities = np.asarray(result.probabilities, dtype=float)
        y = np.arange(len(probabilities))
        bars = pg.BarGraphItem(x0=0, y=y, height=0.6, width=probabilities, brush=(80, 150, 230))
        plot.addItem(bars)
        plot.setXRange(0, 1)
        plot.getAxis("left").setTicks([[(i, n) for i, n in enumerate(result.labels)]])
        plot.setMouseEnabled(x=False, y=False)
        layout.addWidget(plot)
        for name, p in zip(result.labels, probabilities):
            layout.addWidget(QLabel(f"{name}: {p:.3f}"))
        self.bar_plots.append(plot)
        return box
