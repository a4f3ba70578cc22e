"""Editing measurements after drawing them, with the mouse as a user does: drag a polygon vertex,
a rectangle corner, a whole ellipse or a distance end; the figures follow (checked against numpy
on the phantom's known values), the edit is kept for the series, and Delete removes it. Also
polygons drawn vertex by vertex and freehand."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from matplotlib.path import Path as PolygonPath
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from workstation.gui.measurements import load_measurements
from workstation.gui.mpr import Plane
from workstation.gui.roi_items import handle_positions
from workstation.gui.tools import MeasurementsPanel
from workstation.gui.view_widget import SliceView
from workstation.gui.viewer_model import ViewerModel

pytestmark = pytest.mark.gui
SERIES = "1.2.826.0.1.3680043.8.498.1"
SPACING = (0.8, 0.6, 2.0)  # unequal pixel sides: areas must use both
TOLERANCE = 0.15
"""How far (image pixels) a point placed with the mouse may land from its target: Qt hands the
scene whole screen pixels, and one voxel spans about 13 of them here."""


@pytest.fixture
def phantom(synth):
    """48 x 40 slices of distinct known values (so a mean tells exactly which pixels counted)."""
    volume = synth.make_volume(synth.acquisitions["axial"], shape=(6, 40, 48), spacing=SPACING)
    rng = np.random.default_rng(7)
    volume.array[:] = rng.integers(-200, 800, size=volume.shape)
    return volume


def open_series(qtbot, volume, store) -> tuple[SliceView, MeasurementsPanel]:
    """An axial view (about 10 screen pixels per voxel) with a measurements panel on `store`."""
    model = ViewerModel(volume)
    view = SliceView(model, Plane.AXIAL)
    panel = MeasurementsPanel(store)
    for widget in (view, panel):
        qtbot.addWidget(widget)
    view.show_texts = False
    view.set_crosshair_visible(False)
    view.resize(520, 460)
    view.show()
    qtbot.waitExposed(view)
    panel.attach([view], SERIES)
    return view, panel


def screen(view: SliceView, column: float, row: float) -> QPointF:
    """Viewport pixel of an image position (column, row) on the view."""
    sr, sd = view.grid.pixel_size
    return QPointF(view.mapFromScene(view.view_box.mapViewToScene(QPointF(column * sr, row * sd))))


def _send(view: SliceView, kind: QEvent.Type, at: QPointF, buttons) -> None:
    button = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
    event = QMouseEvent(
        kind, at, view.viewport().mapToGlobal(at), button, buttons, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(view.viewport(), event)


def drag(view: SliceView, path: list[tuple[float, float]], steps: int = 6) -> None:
    """Press the left button at the first (column, row), move through the others, release.
    Moves are 11 ms apart: pyqtgraph drops mouse moves closer than 10 ms, as it does a fast
    mouse's."""
    held = Qt.MouseButton.LeftButton
    points = [screen(view, c, r) for c, r in path]
    _send(view, QEvent.Type.MouseMove, points[0], Qt.MouseButton.NoButton)
    _send(view, QEvent.Type.MouseButtonPress, points[0], held)
    for a, b in itertools.pairwise(points):
        for t in np.linspace(0, 1, steps + 1)[1:]:
            time.sleep(0.011)
            _send(view, QEvent.Type.MouseMove, a + (b - a) * float(t), held)
    _send(view, QEvent.Type.MouseButtonRelease, points[-1], Qt.MouseButton.NoButton)
    QApplication.processEvents()


def park_mouse(view: SliceView) -> None:
    """Move the mouse off the shapes, so a screenshot shows their own pens, not hover."""
    _send(view, QEvent.Type.MouseMove, QPointF(2, 2), Qt.MouseButton.NoButton)
    QApplication.processEvents()


def click(view: SliceView, column: float, row: float, double: bool = False) -> None:
    """A left click (or double-click: click, then the platform's double-click press) there."""
    at = screen(view, column, row)
    held, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    _send(view, QEvent.Type.MouseButtonPress, at, held)
    _send(view, QEvent.Type.MouseButtonRelease, at, none)
    if double:
        _send(view, QEvent.Type.MouseButtonDblClick, at, held)
        _send(view, QEvent.Type.MouseButtonRelease, at, none)
    QApplication.processEvents()


def expected_stats(volume, slice_index: int, vertices) -> dict[str, float]:
    """Figures over the pixels whose centre lies inside the polygon, computed independently."""
    image = volume.array[slice_index].astype(float)
    rows, cols = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    inside = PolygonPath(np.asarray(vertices)).contains_points(
        np.column_stack([cols.ravel(), rows.ravel()])
    )
    values = image.ravel()[inside]
    return {
        "pixels": int(inside.sum()),
        "area_mm2": inside.sum() * SPACING[0] * SPACING[1],
        "mean": values.mean(),
        "sd": values.std(ddof=1),
        "min": values.min(),
        "max": values.max(),
    }


def assert_stats(stats: dict, expected: dict) -> None:
    assert stats["pixels"] == expected["pixels"]
    for key in ("area_mm2", "mean", "sd", "min", "max"):
        assert stats[key] == pytest.approx(expected[key]), key


def grab_handle(shape, view: SliceView, column: float, row: float) -> tuple[float, float]:
    """The (column, row) of the shape's handle nearest a position (what the user grabs)."""
    sr, sd = view.grid.pixel_size
    target = np.array([column * sr, row * sd])
    nearest = min(handle_positions(shape), key=lambda p: np.hypot(*(p - target)))
    assert np.hypot(*(nearest - target)) < 0.5 * sr
    return float(nearest[0] / sr), float(nearest[1] / sd)


def test_dragging_a_polygon_vertex_remeasures_and_is_kept(
    qtbot, phantom, workstation_store, shots_dir
):
    view, panel = open_series(qtbot, phantom, workstation_store)
    panel.chooser.setCurrentText("polygon")
    square = [(4.5, 4.5), (20.5, 4.5), (20.5, 16.5), (4.5, 16.5)]
    for column, row in square:
        click(view, column, row)
    click(view, *square[-1], double=True)
    assert len(panel.measurements) == 1
    m = panel.measurements[0]
    np.testing.assert_allclose(m.points, square, atol=TOLERANCE)
    assert_stats(m.stats, expected_stats(phantom, view.slice_index, square))
    park_mouse(view)
    view.grab().save(str(shots_dir / "roi_polygon_drawn.png"))

    ((_view, shape),) = panel.shapes_of(m)
    start = grab_handle(shape, view, 20.5, 16.5)
    drag(view, [start, (30.5, 26.5)])
    moved = [(4.5, 4.5), (20.5, 4.5), (30.5, 26.5), (4.5, 16.5)]
    np.testing.assert_allclose(m.points, moved, atol=TOLERANCE)
    expected = expected_stats(phantom, view.slice_index, m.points)
    assert expected["pixels"] > 250  # the drag really grew the polygon
    assert_stats(m.stats, expected)
    assert (
        "area" in panel.list.item(0).text()
        and f"{expected['mean']:.1f}" in panel.list.item(0).text()
    )
    park_mouse(view)
    view.grab().save(str(shots_dir / "roi_polygon_vertex_dragged.png"))

    # closing and reopening the series shows the edited polygon and its figures
    kept = load_measurements(workstation_store, SERIES)
    assert [k.id for k in kept] == [m.id]
    np.testing.assert_allclose(kept[0].points, moved, atol=TOLERANCE)
    assert_stats(kept[0].stats, expected)
    view2, panel2 = open_series(qtbot, phantom, workstation_store)
    assert panel2.list.count() == 1
    ((_v, reopened),) = panel2.shapes_of(panel2.measurements[0])
    got = sorted(
        (round(c, 1), round(r, 1))
        for c, r in (p / np.array(SPACING[:2]) for p in handle_positions(reopened))
    )
    assert got == sorted((round(c, 1), round(r, 1)) for c, r in moved)
    park_mouse(view2)
    view2.grab().save(str(shots_dir / "roi_polygon_reopened.png"))


def test_rectangle_corner_drag_and_ellipse_move(qtbot, phantom, workstation_store, shots_dir):
    view, panel = open_series(qtbot, phantom, workstation_store)
    k = view.slice_index
    panel.chooser.setCurrentText("rectangle")
    drag(view, [(5.5, 5.5), (15.5, 12.5)])
    rect = panel.measurements[0]
    assert rect.stats["mean"] == pytest.approx(phantom.array[k, 6:13, 6:16].mean())

    ((_v, shape),) = panel.shapes_of(rect)
    drag(view, [grab_handle(shape, view, 15.5, 12.5), (25.5, 18.5)])
    inside = phantom.array[k, 6:19, 6:26].astype(float)
    assert rect.stats["pixels"] == inside.size
    assert rect.stats["area_mm2"] == pytest.approx(inside.size * SPACING[0] * SPACING[1])
    assert rect.stats["mean"] == pytest.approx(inside.mean())
    assert rect.stats["sd"] == pytest.approx(inside.std(ddof=1))
    assert (rect.stats["min"], rect.stats["max"]) == (inside.min(), inside.max())

    panel.chooser.setCurrentText("ellipse")
    drag(view, [(30.5, 20.5), (44.5, 36.5)])
    ellipse = panel.measurements[1]
    before = dict(ellipse.stats)
    drag(view, [(37.5, 28.5), (33.5, 24.5)])  # grab inside, move 4 columns left, 4 rows up
    np.testing.assert_allclose(ellipse.points, [(26.5, 16.5), (40.5, 32.5)], atol=TOLERANCE)
    (c0, r0), (c1, r1) = ellipse.points
    rows, cols = np.mgrid[0:40, 0:48]
    mask = ((cols - (c0 + c1) / 2) / ((c1 - c0) / 2)) ** 2 + (
        (rows - (r0 + r1) / 2) / ((r1 - r0) / 2)
    ) ** 2 <= 1
    assert ellipse.stats["pixels"] == mask.sum() == pytest.approx(before["pixels"], abs=4)
    assert ellipse.stats["mean"] == pytest.approx(phantom.array[k][mask].mean())
    assert ellipse.stats["mean"] != pytest.approx(before["mean"])
    park_mouse(view)
    view.grab().save(str(shots_dir / "roi_rectangle_ellipse_edited.png"))

    kept = {m.id: m for m in load_measurements(workstation_store, SERIES)}
    assert kept[rect.id].stats == rect.stats and kept[ellipse.id].stats == ellipse.stats


def test_distance_end_drag_updates_the_length(qtbot, phantom, workstation_store):
    view, panel = open_series(qtbot, phantom, workstation_store)
    panel.chooser.setCurrentText("distance")
    drag(view, [(10.0, 10.0), (20.0, 10.0)])
    m = panel.measurements[0]
    assert m.stats["length_mm"] == pytest.approx(10 * SPACING[0], abs=0.06)
    panel.chooser.setCurrentText("Crosshair")
    ((_v, shape),) = panel.shapes_of(m)
    drag(view, [grab_handle(shape, view, 20.0, 10.0), (20.0, 30.0)])
    assert m.stats["length_mm"] == pytest.approx(
        np.hypot(10 * SPACING[0], 20 * SPACING[1]), abs=0.06
    )
    assert load_measurements(workstation_store, SERIES)[0].stats == m.stats


def test_delete_by_key_and_context_menu(qtbot, phantom, workstation_store, shots_dir):
    view, panel = open_series(qtbot, phantom, workstation_store)
    panel.chooser.setCurrentText("rectangle")
    drag(view, [(5.5, 5.5), (12.5, 10.5)])
    drag(view, [(20.5, 20.5), (30.5, 30.5)])
    panel.chooser.setCurrentText("Crosshair")
    first, second = panel.measurements
    click(view, 9.0, 8.0)  # inside the first rectangle: selects it
    assert panel.selected() is first
    park_mouse(view)
    view.grab().save(str(shots_dir / "roi_selected.png"))
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert panel.measurements == [second] and panel.list.count() == 1
    assert [m.id for m in load_measurements(workstation_store, SERIES)] == [second.id]
    assert first not in [m for _v, _s, m in panel._drawn]

    ((_v, shape),) = panel.shapes_of(second)
    shape.getMenu().remAct.trigger()  # the shape's context menu: "Delete measurement"
    qtbot.waitUntil(lambda: panel.list.count() == 0, timeout=2000)
    assert load_measurements(workstation_store, SERIES) == []
    assert shape.scene() is None


def test_polygon_closes_on_enter_and_escape_drops_it(qtbot, phantom, workstation_store):
    view, panel = open_series(qtbot, phantom, workstation_store)
    panel.chooser.setCurrentText("polygon")
    triangle = [(6.5, 6.5), (26.5, 6.5), (6.5, 30.5)]
    for column, row in triangle:
        click(view, column, row)
    qtbot.keyClick(view, Qt.Key.Key_Return)
    assert len(panel.measurements) == 1
    drawn = panel.measurements[0]
    np.testing.assert_allclose(drawn.points, triangle, atol=TOLERANCE)
    assert_stats(drawn.stats, expected_stats(phantom, view.slice_index, drawn.points))
    for column, row in [(30.5, 5.5), (40.5, 5.5), (40.5, 15.5)]:
        click(view, column, row)
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    click(view, 35.5, 30.5)  # starts a new polygon, not a fourth vertex of the dropped one
    assert len(panel.measurements) == 1
    assert panel.tool.points == [pytest.approx((35.5, 30.5), abs=0.06)]


def test_freehand_polygon_keeps_its_shape_with_few_vertices(qtbot, phantom, workstation_store):
    view, panel = open_series(qtbot, phantom, workstation_store)
    panel.chooser.setCurrentText("polygon")
    t = np.linspace(0, 2 * np.pi, 60)
    outline = [(24 + 12 * np.cos(a), 20 + 9 * np.sin(a)) for a in t]
    drag(view, outline, steps=1)
    m = panel.measurements[0]
    assert 8 <= len(m.points) < 60
    traced = expected_stats(phantom, view.slice_index, outline)
    assert m.stats["pixels"] == pytest.approx(traced["pixels"], rel=0.03)
    assert m.stats["area_mm2"] == pytest.approx(np.pi * 12 * 9 * SPACING[0] * SPACING[1], rel=0.05)


def test_main_window_keeps_edits_per_series_and_deletes_with_the_key(
    qtbot, phantom, workstation_store, tmp_path, shots_dir
):
    from PySide6.QtCore import QSettings

    from workstation.gui.main_window import MainWindow

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(workstation_store, settings=settings, with_browser=False)
    qtbot.addWidget(window)
    window.resize(1300, 800)
    window.show()
    qtbot.waitExposed(window)
    info = {"modality": "CT", "path": str(tmp_path / "phantom.nii.gz")}
    window.show_volume(phantom, info)
    panel = window.measurements_panel
    view = window.viewer.views[Plane.AXIAL]
    panel.chooser.setCurrentText("rectangle")
    drag(view, [(5.5, 5.5), (15.5, 12.5)])
    panel.chooser.setCurrentText("Crosshair")
    (m,) = panel.measurements
    (_v, shape) = panel.shapes_of(m)[0]
    drag(view, [grab_handle(shape, view, 15.5, 12.5), (20.5, 16.5)])
    k = view.slice_index
    assert m.stats["mean"] == pytest.approx(phantom.array[k, 6:17, 6:21].mean())
    park_mouse(view)
    window.grab().save(str(shots_dir / "roi_main_window.png"))

    window.show_volume(phantom, info)  # the same series opened again
    panel = window.measurements_panel
    (kept,) = panel.measurements
    assert kept.id == m.id and kept.stats == m.stats
    view = window.viewer.views[Plane.AXIAL]
    panel.select(kept)
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert panel.list.count() == 0
    assert load_measurements(workstation_store, info["path"]) == []
