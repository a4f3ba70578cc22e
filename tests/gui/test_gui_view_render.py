"""What the views show on screen: grey levels under window/level, orientation, aspect, overlays and
the linked crosshair. Each test paints real widgets offscreen and reads the grabbed pixels."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from workstation.core.results import HeatMap, Label, LabelMap
from workstation.gui.mpr import Plane
from workstation.gui.view_widget import SliceView
from workstation.gui.viewer_model import ViewerModel
from workstation.gui.window_level import Window, grey_levels

pytestmark = pytest.mark.gui


def show(qtbot, model, plane, size=(320, 320)) -> SliceView:
    view = SliceView(model, plane)
    qtbot.addWidget(view)
    view.resize(*size)
    view.show()
    qtbot.waitExposed(view)
    view.set_crosshair_visible(False)
    return view


def pixel(view: SliceView, lps) -> tuple[int, int, int]:
    image = view.grab().toImage()
    colour = image.pixelColor(view.screen_position(lps))
    return colour.red(), colour.green(), colour.blue()


def test_first_paint_shows_the_slice(qtbot, synth, shots_dir):
    """Guards the PySide6/pyqtgraph pairing: a view paints without crashing and shows data."""
    volume = synth.make_volume(synth.acquisitions["axial"])
    volume.array[:] = 100
    view = show(qtbot, ViewerModel(volume), Plane.AXIAL)
    image = view.grab().toImage()
    image.save(str(shots_dir / "first_paint.png"))
    centre = image.pixelColor(image.width() // 2 + 7, image.height() // 2 + 7)
    assert centre.red() == pytest.approx(grey_levels(100, Window(40, 400)), abs=1.5)


@pytest.mark.parametrize("window", [Window(40, 400), Window(300, 200), Window(-600, 1500)])
@pytest.mark.parametrize("value", [-1000, 0, 85, 250, 3000])
def test_grey_on_screen_follows_the_window(qtbot, synth, window, value):
    volume = synth.make_volume(synth.acquisitions["axial"])
    lps = np.array([3.0, -2.0, 1.0])
    synth.put_marker(volume, lps, value)
    model = ViewerModel(volume)
    model.set_cursor(lps)
    model.set_window(window)
    view = show(qtbot, model, Plane.AXIAL)
    expected = float(
        np.clip((value - (window.center - window.width / 2)) / window.width * 255, 0, 255)
    )
    red, green, blue = pixel(view, lps)
    assert red == green == blue
    assert red == pytest.approx(expected, abs=1.5)
    model.set_invert(True)
    assert pixel(view, lps)[0] == pytest.approx(255 - expected, abs=1.5)


@pytest.mark.parametrize(
    "acquisition", ["axial", "axial_flipped", "coronal", "sagittal", "oblique"]
)
def test_patient_sides_are_on_the_lettered_edges(qtbot, synth, acquisition, shots_dir):
    """A marker at the patient's left appears right of centre in axial and coronal views (edge
    letter L); an anterior marker appears above centre in axial and left of centre in sagittal."""
    volume = synth.make_volume(synth.acquisitions[acquisition], shape=(30, 30, 30), background=-50)
    left = np.array([8.0, 0.0, 0.0])
    anterior = np.array([0.0, -8.0, 0.0])
    superior = np.array([0.0, 0.0, 8.0])
    synth.put_marker(volume, left, 900)
    synth.put_marker(volume, anterior, 600)
    synth.put_marker(volume, superior, 300)
    model = ViewerModel(volume)
    model.set_window(Window(500, 1000))
    views = {plane: show(qtbot, model, plane) for plane in Plane}
    centre = {plane: view.screen_position(np.zeros(3)) for plane, view in views.items()}

    def bright_at(plane, lps, level):
        model.set_cursor(lps)
        grey = pixel(views[plane], lps)[0]
        return grey == pytest.approx(grey_levels(level, model.window), abs=3)

    assert bright_at(Plane.AXIAL, left, 900)
    assert views[Plane.AXIAL].screen_position(left).x() > centre[Plane.AXIAL].x()
    assert views[Plane.AXIAL].letters.right == "L"
    assert bright_at(Plane.CORONAL, left, 900)
    assert views[Plane.CORONAL].screen_position(left).x() > centre[Plane.CORONAL].x()
    assert bright_at(Plane.AXIAL, anterior, 600)
    assert views[Plane.AXIAL].screen_position(anterior).y() < centre[Plane.AXIAL].y()
    assert views[Plane.AXIAL].letters.top == "A"
    assert bright_at(Plane.SAGITTAL, anterior, 600)
    assert views[Plane.SAGITTAL].screen_position(anterior).x() < centre[Plane.SAGITTAL].x()
    assert views[Plane.SAGITTAL].letters.left == "A"
    assert bright_at(Plane.CORONAL, superior, 300)
    assert views[Plane.CORONAL].screen_position(superior).y() < centre[Plane.CORONAL].y()
    assert views[Plane.CORONAL].letters.top == "S"
    for plane, view in views.items():
        view.grab().save(str(shots_dir / f"orientation_{acquisition}_{plane.value}.png"))


def test_aspect_on_screen_comes_from_the_spacing(qtbot, synth):
    volume = synth.make_volume(
        synth.acquisitions["axial"], shape=(20, 40, 40), spacing=(0.5, 0.5, 2.0)
    )
    view = show(qtbot, ViewerModel(volume), Plane.CORONAL)
    a = view.screen_position(volume.index_to_world((0, 20, 0)))
    b = view.screen_position(volume.index_to_world((10, 20, 0)))  # 10 columns = 5 mm
    c = view.screen_position(volume.index_to_world((0, 20, 10)))  # 10 slices = 20 mm
    assert abs(c.y() - a.y()) / abs(b.x() - a.x()) == pytest.approx(4.0, rel=0.05)


def label_result(volume, name="lesions"):
    labels = np.zeros(volume.shape, dtype=np.uint8)
    return volume.with_array(labels), name


def test_label_overlay_colours_only_labelled_voxels(qtbot, synth, shots_dir):
    volume = synth.make_volume(synth.acquisitions["axial"])
    inside = np.array([4.0, 4.0, 0.0])
    outside = np.array([-6.0, -6.0, 0.0])
    labels = np.zeros(volume.shape, dtype=np.uint8)
    label_volume = volume.with_array(labels)
    synth.put_marker(label_volume, inside, 1, radius=2)
    result = LabelMap(name="lesion", volume=label_volume, labels=[Label(1, "Lesion", (255, 0, 0))])
    model = ViewerModel(volume)
    model.set_cursor(inside)
    view = show(qtbot, model, Plane.AXIAL)
    grey_before = pixel(view, inside)
    overlay = model.add_result(result, opacity=1.0)
    view.grab().save(str(shots_dir / "label_overlay.png"))
    assert pixel(view, inside) == (255, 0, 0)
    assert pixel(view, outside) == grey_before
    overlay.opacity = 0.5
    model.overlay_changed()
    red, _green, _ = pixel(view, inside)
    assert red == pytest.approx(0.5 * 255 + 0.5 * grey_before[0], abs=3)
    overlay.set_label_visible(1, False)
    model.overlay_changed()
    assert pixel(view, inside) == grey_before
    assert overlay.legend[0].volume_ml == pytest.approx(125 / 1000)


def test_label_outline_leaves_the_inside_uncoloured(qtbot, synth):
    volume = synth.make_volume(synth.acquisitions["axial"])
    centre = np.array([0.0, 0.0, 0.0])
    label_volume = volume.with_array(np.zeros(volume.shape, dtype=np.uint8))
    synth.put_marker(label_volume, centre, 2, radius=3)
    model = ViewerModel(volume)
    model.set_cursor(centre)
    view = show(qtbot, model, Plane.AXIAL)
    grey = pixel(view, centre)
    overlay = model.add_result(
        LabelMap(name="organ", volume=label_volume, labels=[Label(2, "Organ", (0, 255, 0))]),
        opacity=1.0,
    )
    overlay.outline = True
    model.overlay_changed()
    assert pixel(view, centre) == grey
    assert pixel(view, centre + np.array([3.0, 0.0, 0.0])) == (0, 255, 0)


def test_heat_map_threshold_and_resampling_from_another_grid(qtbot, synth, shots_dir):
    volume = synth.make_volume(synth.acquisitions["axial"], spacing=(1.0, 1.0, 1.0))
    coarse = synth.make_volume(
        synth.acquisitions["axial"], shape=(12, 14, 16), spacing=(2.0, 2.0, 2.0)
    )
    heat = coarse.with_array(np.zeros(coarse.shape, dtype=np.float32))
    hot = np.array([6.0, 0.0, 0.0])
    synth.put_marker(heat, hot, 1, radius=2)
    heat.array[heat.array > 0] = 0.9
    model = ViewerModel(volume)
    model.set_cursor(hot)
    view = show(qtbot, model, Plane.AXIAL)
    cold = np.array([-8.0, 0.0, 0.0])
    grey_cold = pixel(view, cold)
    overlay = model.add_result(HeatMap(name="p", volume=heat, value_range=(0.0, 1.0)), opacity=1.0)
    assert overlay.resampled and overlay.volume.shape == volume.shape
    overlay.threshold = 0.5
    model.overlay_changed()
    view.grab().save(str(shots_dir / "heat_overlay.png"))
    hot_colour = pixel(view, hot)
    assert hot_colour != grey_cold and hot_colour[0] > 200  # inferno at 0.9 is a bright yellow
    assert pixel(view, cold) == grey_cold  # below threshold: image shows through


def test_crosshair_links_the_views_and_scrolling_moves_it(qtbot, synth):
    volume = synth.make_volume(synth.acquisitions["axial"])
    model = ViewerModel(volume)
    views = {plane: show(qtbot, model, plane) for plane in Plane}
    axial = views[Plane.AXIAL]
    target = np.array([5.0, -3.0, 0.0])
    qtbot.mouseClick(
        axial.viewport(),
        _left(),
        pos=axial.viewport().mapFrom(axial, axial.screen_position(target)),
    )
    np.testing.assert_allclose(model.cursor[:2], target[:2], atol=0.6)
    assert views[Plane.SAGITTAL].slice_index == views[Plane.SAGITTAL].grid.nearest_slice(target)
    assert views[Plane.CORONAL].slice_index == views[Plane.CORONAL].grid.nearest_slice(target)
    before = model.cursor[2]
    axial.scroll(3)
    assert model.cursor[2] == pytest.approx(before + 3.0)
    assert axial.slice_index == axial.grid.nearest_slice(model.cursor)
    assert views[Plane.CORONAL].h_line.value() == pytest.approx(
        views[Plane.CORONAL].grid.from_world(model.cursor)[1] * views[Plane.CORONAL].grid.spacing[1]
    )


def _left():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_zoom_and_pan_keep_voxels_under_their_screen_position(qtbot, synth):
    volume = synth.make_volume(synth.acquisitions["axial"])
    lps = np.array([4.0, 4.0, 0.0])
    synth.put_marker(volume, lps, 1000)
    model = ViewerModel(volume)
    model.set_cursor(lps)
    view = show(qtbot, model, Plane.AXIAL)
    before = view.screen_position(lps)
    view.zoom(2.0)
    view.pan(-2.0, 0.0)
    qtbot.wait(10)
    after = view.screen_position(lps)
    assert after != before
    assert pixel(view, lps)[0] == 255


def test_keys_scroll_and_right_drag_changes_the_window(qtbot, synth):
    from PySide6.QtCore import Qt

    volume = synth.make_volume(synth.acquisitions["axial"])
    model = ViewerModel(volume)
    view = show(qtbot, model, Plane.AXIAL)
    start = view.slice_index
    qtbot.keyClick(view, Qt.Key.Key_Up)
    assert view.slice_index == start + 1
    qtbot.keyClick(view, Qt.Key.Key_PageDown)
    assert view.slice_index == start + 1 - 10
    qtbot.keyClick(view, Qt.Key.Key_End)
    assert view.slice_index == view.grid.slices - 1
    before = model.window
    view.drag_window(dx=64, dy=-32)  # right: wider; up: lower level
    assert model.window.width > before.width
    assert model.window.center < before.center
