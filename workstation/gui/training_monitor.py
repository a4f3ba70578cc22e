"""What a user watches while a model trains: one curve per loss (a GAN's generator and
discriminator) growing by a point each epoch, and the latest grid of samples.

A GAN's losses alone say little (they chase each other); the samples grid is what shows whether
the images get better, so both sit side by side.
"""

from __future__ import annotations

import itertools
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

CURVE_COLOURS = {
    "generator_loss": (255, 150, 50),
    "discriminator_loss": (80, 170, 255),
}
OTHER_COLOURS = ((120, 220, 120), (230, 90, 200), (230, 230, 90), (180, 180, 180))


def is_loss(name: str) -> bool:
    return name == "loss" or name.endswith("_loss")


def curve_label(name: str) -> str:
    """ "generator_loss" -> "generator"."""
    label = name.removesuffix("_loss").replace("_", " ")
    return label or name


class TrainingMonitor(QWidget):
    """`show_epoch(rows, png)` draws the metrics rows (from metrics.json) and the sample grid."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget()
        self.plot.setTitle("Loss per epoch")
        self.plot.setLabel("bottom", "epoch")
        self.plot.setLabel("left", "loss")
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setMinimumSize(320, 260)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self._colours = itertools.cycle(OTHER_COLOURS)
        self.samples = QLabel("Samples appear after the first epoch.")
        self.samples.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.samples.setMinimumSize(280, 280)
        self.samples.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.samples.setStyleSheet("background: black; color: #aaa;")
        self.samples_pixmap = QPixmap()
        self.samples_caption = QLabel("")
        self.samples_caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        right = QVBoxLayout()
        right.addWidget(self.samples, 1)
        right.addWidget(self.samples_caption)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot, 3)
        layout.addLayout(right, 2)

    def clear(self) -> None:
        for curve in self.curves.values():
            curve.setData([], [])
        self.samples_pixmap = QPixmap()
        self.samples.clear()
        self.samples.setText("Samples appear after the first epoch.")
        self.samples_caption.setText("")

    def show_epoch(self, rows: list[dict[str, Any]], samples_png: bytes = b"") -> None:
        names = sorted({key for row in rows for key in row if is_loss(key)})
        for name in names:
            points = [(row["epoch"], row[name]) for row in rows if name in row]
            curve = self.curves.get(name) or self._new_curve(name)
            curve.setData([p[0] for p in points], [p[1] for p in points])
        if samples_png and self.samples_pixmap.loadFromData(samples_png, "PNG"):
            epoch = int(rows[-1]["epoch"]) if rows else 0
            self.samples_caption.setText(f"Samples after epoch {epoch} (same latents each epoch)")
            self._fit_samples()

    def points(self, name: str) -> tuple[list[float], list[float]]:
        """The (epochs, values) drawn for metric `name` (empty when not drawn)."""
        curve = self.curves.get(name)
        if curve is None or curve.xData is None:
            return [], []
        return list(curve.xData), list(curve.yData)

    def _new_curve(self, name: str) -> pg.PlotDataItem:
        if self.plot.plotItem.legend is None:  # added with the first curve: no empty box
            self.plot.addLegend(offset=(-10, 10), brush=(20, 20, 20, 170))
        colour = CURVE_COLOURS.get(name) or next(self._colours)
        curve = self.plot.plot(
            [],
            [],
            name=curve_label(name),
            pen=pg.mkPen(colour, width=2),
            symbol="o",
            symbolSize=7,
            symbolBrush=colour,
            symbolPen=None,
        )
        self.curves[name] = curve
        return curve

    def _fit_samples(self) -> None:
        """Whole-number magnification when the grid fits (pixels stay pixels), else shrink."""
        if self.samples_pixmap.isNull():
            return
        room = self.samples.contentsRect().size()
        size = self.samples_pixmap.size()
        factor = min(room.width() / size.width(), room.height() / size.height())
        if factor >= 1:
            whole = int(factor)
            shown = self.samples_pixmap.scaled(
                size.width() * whole,
                size.height() * whole,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.FastTransformation,
            )
        else:
            shown = self.samples_pixmap.scaled(
                room,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        self.samples.setPixmap(shown)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_samples()
