"""Editable shapes for finished measurements: a distance line with two end handles, a rectangle
and an ellipse with corner and edge handles, a polygon with one handle per vertex.

Dragging inside a shape moves it, dragging a handle reshapes it, clicking a polygon edge adds a
vertex and a vertex's context menu removes it; the shape's own context menu deletes the
measurement. Shapes live in the view's coordinates (mm in the plane: column * pixel width,
row * pixel height), and `shape_points` reads them back as (column, row) pixel positions, the
units a `Measurement` keeps.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

SHAPE_PEN = pg.mkPen((255, 220, 0), width=2)
HOVER_PEN = pg.mkPen((255, 255, 160), width=2)
SELECTED_PEN = pg.mkPen((0, 230, 255), width=3)
SELECTED_HOVER_PEN = pg.mkPen((150, 245, 255), width=3)

_EDGE_HANDLES = [  # (handle, fixed point) in the shape's unit square: corners, then edges
    ((0, 0), (1, 1)),
    ((1, 0), (0, 1)),
    ((1, 1), (0, 0)),
    ((0, 1), (1, 0)),
    ((0.5, 0), (0.5, 1)),
    ((1, 0.5), (0, 0.5)),
    ((0.5, 1), (0.5, 0)),
    ((0, 0.5), (1, 0.5)),
]


class _BoxShape(pg.ROI):
    """An axis-aligned rectangle with eight scale handles (no rotation: the measurement is
    defined by two opposite corners)."""

    def __init__(self, pos, size, **kwargs) -> None:
        super().__init__(pos, size, rotatable=False, **kwargs)
        for handle, fixed in _EDGE_HANDLES:
            self.addScaleHandle(handle, fixed)


class _EllipseShape(pg.EllipseROI):
    """The ellipse inscribed in its box, with the box's eight scale handles and no rotation."""

    def __init__(self, pos, size, **kwargs) -> None:
        super().__init__(pos, size, rotatable=False, **kwargs)

    def _addHandles(self) -> None:
        for handle, fixed in _EDGE_HANDLES:
            self.addScaleHandle(handle, fixed)


def make_shape(kind: str, points: list[tuple[float, float]], pixel: tuple[float, float]) -> pg.ROI:
    """The editable shape for a measurement of `kind` with (column, row) `points`."""
    sr, sd = pixel
    mm = [(c * sr, r * sd) for c, r in points]
    style = {"pen": SHAPE_PEN, "hoverPen": HOVER_PEN, "removable": True}
    if kind == "distance":
        shape = pg.LineSegmentROI(positions=mm, **style)
    elif kind == "polygon":
        shape = pg.PolyLineROI(mm, closed=True, **style)
    elif kind in ("rectangle", "ellipse"):
        (x0, y0), (x1, y1) = mm[0], mm[1]
        pos, size = (min(x0, x1), min(y0, y1)), (abs(x1 - x0), abs(y1 - y0))
        shape = (_BoxShape if kind == "rectangle" else _EllipseShape)(pos, size, **style)
    else:
        raise ValueError(f"no shape for a {kind!r} measurement")
    shape.setZValue(60)
    shape.setAcceptedMouseButtons(Qt.MouseButton.LeftButton)  # a click selects it
    menu = shape.getMenu()
    menu.remAct.setText("Delete measurement")
    return shape


def shape_points(kind: str, shape: pg.ROI, pixel: tuple[float, float]) -> list[tuple[float, float]]:
    """(column, row) points of a shape as it is now: distance ends, two opposite corners of a
    rectangle or ellipse, or the polygon's vertices."""
    sr, sd = pixel
    if kind in ("rectangle", "ellipse"):
        x, y = shape.pos()
        w, h = shape.size()
        mm = [(min(x, x + w), min(y, y + h)), (max(x, x + w), max(y, y + h))]
    else:
        mm = [shape.mapToParent(h.pos()) for h in shape.getHandles()]
        mm = [(p.x(), p.y()) for p in mm]
    return [(float(x / sr), float(y / sd)) for x, y in mm]


def set_selected(shape: pg.ROI, selected: bool) -> None:
    """Show a shape as the selected measurement (thicker, another colour) or as any other;
    under the mouse it stays recognisably selected."""
    shape.setPen(SELECTED_PEN if selected else SHAPE_PEN)
    hover = SELECTED_HOVER_PEN if selected else HOVER_PEN
    for part in [shape, *getattr(shape, "segments", [])]:  # a polygon's edges hover alone
        part.hoverPen = hover
    shape.update()


def handle_positions(shape: pg.ROI) -> list[np.ndarray]:
    """Where the shape's handles are, in view coordinates (mm): what a user grabs."""
    return [
        np.array([p.x(), p.y()]) for p in (shape.mapToParent(h.pos()) for h in shape.getHandles())
    ]
