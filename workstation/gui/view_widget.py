"""One MPR view: a slice of the series in a patient plane, its overlays, the crosshair, the
orientation letters on the edges and the corner texts.

Mouse: left click or drag moves the crosshair (or uses the active measuring tool; a drag that
starts on a measurement's shape moves or reshapes it instead), right drag
changes window (horizontal) and level (vertical), middle drag pans, the wheel scrolls slices and
Ctrl+wheel zooms. Keys: Up/Down and PageUp/PageDown scroll, Home/End jump to the ends.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import QWidget

from workstation.gui.mpr.planes import EdgeLetters, Plane, edge_letters
from workstation.gui.mpr.slicing import SliceGrid
from workstation.gui.readouts import ViewTexts, readout_text
from workstation.gui.view_images import IndexedOverlayItem, WindowedImageItem
from workstation.gui.viewer_model import ViewerModel
from workstation.gui.window_level import lookup_table

PLANE_COLORS = {
    Plane.AXIAL: QColor(235, 90, 90),
    Plane.CORONAL: QColor(90, 170, 250),
    Plane.SAGITTAL: QColor(110, 210, 110),
}
"""Each crosshair line has the colour of the plane it marks (as do the view titles)."""

_OTHERS = {
    Plane.AXIAL: (Plane.SAGITTAL, Plane.CORONAL),
    Plane.CORONAL: (Plane.SAGITTAL, Plane.AXIAL),
    Plane.SAGITTAL: (Plane.CORONAL, Plane.AXIAL),
}


class _SliceViewBox(pg.ViewBox):
    """A ViewBox whose mouse gestures are the reading-room ones, forwarded to the view."""

    def __init__(self, view: SliceView) -> None:
        super().__init__(lockAspect=1.0, invertY=True, enableMenu=False)
        self._view = view
        self.setMouseEnabled(x=True, y=True)

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self._view.left_click(self.mapSceneToView(ev.scenePos()), double=ev.double())
        else:
            ev.ignore()

    def mouseDragEvent(self, ev, axis=None) -> None:
        button = ev.button()
        if button == Qt.MouseButton.MiddleButton:
            super().mouseDragEvent(ev, axis)  # pan (pyqtgraph's default for the left button)
            return
        ev.accept()
        if button == Qt.MouseButton.RightButton:
            delta = ev.screenPos() - ev.lastScreenPos()
            self._view.drag_window(delta.x(), delta.y())
        elif button == Qt.MouseButton.LeftButton:
            if ev.isStart():  # the drag began where the button went down, a few pixels back
                self._view.left_drag(
                    self.mapSceneToView(ev.buttonDownScenePos()), start=True, finish=False
                )
            self._view.left_drag(
                self.mapSceneToView(ev.scenePos()), start=False, finish=ev.isFinish()
            )

    def wheelEvent(self, ev, axis=None) -> None:
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)
            return
        ev.accept()
        steps = ev.delta() / 120 if hasattr(ev, "delta") else ev.angleDelta().y() / 120
        self._view.scroll(int(np.sign(steps)) if steps else 0)


class SliceView(pg.GraphicsView):
    """A view of one patient plane of the series in `model`."""

    readout = Signal(str)
    clicked = Signal(object)  # LPS point
    key_pressed = Signal(int)  # a key the view does not use itself (Delete, Enter, Escape...)

    def __init__(
        self, model: ViewerModel, plane: Plane | str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent, background="k")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(120, 120)
        self.plane = Plane(plane)
        self.model = model
        self.grid: SliceGrid = model.grid(self.plane)
        self.letters: EdgeLetters = edge_letters(self.grid.axes.right, self.grid.axes.down)
        self.slice_index = self.grid.nearest_slice(model.cursor)
        self.tool: Callable | None = None  # a measuring tool takes the left button when set
        self.show_texts = True  # letters and corner texts (off for approved-image comparisons)
        self._readout_text = ""
        self._texts = ViewTexts()  # laid-out letters and corner lines, kept between paints
        self._font: QFont | None = None

        self.view_box = _SliceViewBox(self)
        self.setCentralItem(self.view_box)
        self.image_item = WindowedImageItem()
        self.view_box.addItem(self.image_item)
        self.overlay_items: list[IndexedOverlayItem] = []
        self._boxes: dict[tuple, tuple[int, int, int, int] | None] = {}  # drawn box per slice
        first, second = _OTHERS[self.plane]
        self.v_line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(PLANE_COLORS[first]))
        self.h_line = pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen(PLANE_COLORS[second]))
        for line in (self.v_line, self.h_line):
            line.setZValue(50)
            self.view_box.addItem(line, ignoreBounds=True)
        sr, sd = self.grid.pixel_size
        self.image_rect = QRectF(-sr / 2, -sd / 2, self.grid.columns * sr, self.grid.rows * sd)
        self.view_box.setRange(self.image_rect, padding=0.0)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)

        model.cursor_changed.connect(self._on_cursor)
        model.display_changed.connect(self._on_display)
        model.overlays_changed.connect(self._on_overlays)
        self._on_display()
        self._show_slice()
        self.image_item.setRect(self.image_rect)  # after the first image: it scales by its size
        self._place_crosshair()

    # --- drawing --------------------------------------------------------------------------
    def current_slice(self) -> np.ndarray:
        return self.grid.extract(
            self.model.volume.array, self.slice_index, order=1, fill=self.model.fill_value
        )

    def _show_slice(self) -> None:
        window = self.model.window
        self.image_item.setImage(
            self.current_slice(), autoLevels=False, levels=(window.low, window.high)
        )
        self._draw_overlays()

    def _draw_overlays(self) -> None:
        shown = [o for o in self.model.overlays if o.visible]
        while len(self.overlay_items) < len(shown):
            item = IndexedOverlayItem()
            item.setZValue(10 + len(self.overlay_items))
            self.view_box.addItem(item)
            self.overlay_items.append(item)
        for item, overlay in zip(self.overlay_items, shown):
            data, table = overlay.layer(self.grid, self.slice_index)
            box = self._drawn_box(overlay, data, table)
            if box is None:  # nothing drawn on this slice: no image to blend at all
                item.setVisible(False)
                continue
            top, bottom, left, right = box
            # only the rows and columns holding drawn pixels: Qt then blends far fewer pixels
            crop = data[top:bottom, left:right]
            if table is None:
                item.setImage(crop, autoLevels=False, levels=None)  # RGBA beyond 255 labels
            else:
                item.set_layer(crop, table)  # premultiplied once per colour table
            sr, sd = self.grid.pixel_size
            item.setRect(
                QRectF(
                    self.image_rect.left() + left * sr,
                    self.image_rect.top() + top * sd,
                    (right - left) * sr,
                    (bottom - top) * sd,
                )
            )
            item.setVisible(True)
        for item in self.overlay_items[len(shown) :]:
            item.setVisible(False)

    def _on_display(self) -> None:
        window = self.model.window
        plain = self.model.colormap == "grey" and not self.model.invert
        # a plain grey ramp needs no table: pyqtgraph then skips a per-pixel lookup
        self.image_item.setLookupTable(
            None if plain else lookup_table(self.model.colormap, self.model.invert)
        )
        self.image_item.setLevels((window.low, window.high))
        self.viewport().update()

    def _drawn_box(
        self, overlay, data: np.ndarray, table: np.ndarray | None
    ) -> tuple[int, int, int, int] | None:
        """The layer's drawn box on this slice, found once per slice: overlay volumes never
        change, and any change of how they are drawn clears the boxes (`_on_overlays`)."""
        key = (
            id(overlay),
            self.slice_index,
            getattr(overlay, "outline", None),
            getattr(overlay, "threshold", None),
        )
        if key not in self._boxes:
            self._boxes[key] = _drawn_box(data, table)
        return self._boxes[key]

    def _on_overlays(self) -> None:
        self._boxes.clear()
        self._draw_overlays()

    def _on_cursor(self, point: np.ndarray) -> None:
        column, row, depth = self.grid.from_world(point)  # once: this runs on every slice change
        index = min(max(round(float(depth)), 0), self.grid.slices - 1)  # grid.nearest_slice
        if index != self.slice_index:
            self.slice_index = index
            self._show_slice()
        self._place_crosshair(column, row)
        self.viewport().update()

    def _place_crosshair(self, column: float | None = None, row: float | None = None) -> None:
        if column is None or row is None:
            column, row, _ = self.grid.from_world(self.model.cursor)
        sr, sd = self.grid.pixel_size
        # InfiniteLine.setPos does nothing when the line stays put (scrolling this view)
        self.v_line.setPos(column * sr)
        self.h_line.setPos(row * sd)

    # --- gestures -------------------------------------------------------------------------
    def world_at(self, view_point: QPointF) -> np.ndarray:
        """LPS point under a ViewBox coordinate, on the current slice."""
        sr, sd = self.grid.pixel_size
        return self.grid.to_world(view_point.x() / sr, view_point.y() / sd, self.slice_index)

    def left_click(self, view_point: QPointF, double: bool = False) -> None:
        point = self.world_at(view_point)
        if self.tool is not None:
            self.tool("double" if double else "click", self, point)
            return
        self.model.set_cursor(point)
        self.clicked.emit(point)

    def left_drag(self, view_point: QPointF, start: bool, finish: bool) -> None:
        point = self.world_at(view_point)
        if self.tool is not None:
            self.tool("start" if start else "finish" if finish else "move", self, point)
            return
        self.model.set_cursor(point)

    def drag_window(self, dx: float, dy: float) -> None:
        scale = max(self.model.window.width, 1.0) / 256.0
        self.model.set_window(self.model.window.moved(dy * scale, dx * scale))

    def scroll(self, steps: int) -> None:
        """Move the crosshair `steps` slices along this view's normal."""
        self.set_slice(self.slice_index + steps)

    def set_slice(self, index: int) -> None:
        index = min(max(index, 0), self.grid.slices - 1)
        column, row, _ = self.grid.from_world(self.model.cursor)
        self.slice_index = index
        self._show_slice()
        self.model.set_cursor(self.grid.to_world(column, row, index))
        self.viewport().update()

    def set_crosshair_visible(self, visible: bool) -> None:
        self.v_line.setVisible(visible)
        self.h_line.setVisible(visible)

    def zoom(self, factor: float) -> None:
        """Zoom in (factor > 1) or out around the view centre."""
        self.view_box.scaleBy((1 / factor, 1 / factor))

    def pan(self, dx_mm: float, dy_mm: float) -> None:
        self.view_box.translateBy((dx_mm, dy_mm))

    def reset_view(self) -> None:
        self.view_box.setRange(self.image_rect, padding=0.0)

    def keyPressEvent(self, event) -> None:
        key = event.key()
        steps = {
            Qt.Key.Key_Up: 1,
            Qt.Key.Key_Down: -1,
            Qt.Key.Key_PageUp: 10,
            Qt.Key.Key_PageDown: -10,
        }
        if key in steps:
            self.scroll(steps[key])
        elif key == Qt.Key.Key_Home:
            self.set_slice(0)
        elif key == Qt.Key.Key_End:
            self.set_slice(self.grid.slices - 1)
        else:
            self.key_pressed.emit(int(key))
            super().keyPressEvent(event)

    # --- screen geometry (what tests and tools ask) ---------------------------------------
    def screen_position(self, xyz: np.ndarray | tuple[float, float, float]) -> QPoint:
        """Widget pixel where an LPS point (projected onto this plane) is drawn."""
        column, row, _ = self.grid.from_world(xyz)
        sr, sd = self.grid.pixel_size
        scene = self.view_box.mapViewToScene(QPointF(column * sr, row * sd))
        viewport_point = self.mapFromScene(scene)
        return self.viewport().mapTo(self, viewport_point)

    # --- readouts -------------------------------------------------------------------------
    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        point = self.world_at(self.view_box.mapSceneToView(scene_pos))
        self._readout_text = self.readout_at(point)
        self.readout.emit(self._readout_text)
        self.viewport().update()

    def readout_at(self, point: np.ndarray) -> str:
        """ "x y z mm | [i, j, k] | value units | overlay" for an LPS point."""
        return readout_text(self.model, point)

    def drawForeground(self, painter: QPainter, rect) -> None:
        super().drawForeground(painter, rect)
        if not self.show_texts:
            return
        painter.save()
        painter.resetTransform()
        self._texts.paint(painter, self, self._readout_text)
        painter.restore()

    def text_font(self) -> QFont:
        size = max(7.0, min(9.0, self.height() / 60))
        if self._font is None or self._font.pointSizeF() != size:
            self._font = QFont(self.font())
            self._font.setPointSizeF(size)
        return self._font


def _drawn_box(data: np.ndarray, table: np.ndarray | None) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) bounds of the pixels an overlay layer draws, or None.

    Index 0 of an overlay table is always transparent; without a table the data are RGBA."""
    drawn = data[..., 3] > 0 if table is None else data > 0
    rows = np.flatnonzero(drawn.any(axis=1))
    if rows.size == 0:
        return None
    columns = np.flatnonzero(drawn[rows[0] : rows[-1] + 1].any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(columns[0]), int(columns[-1]) + 1
