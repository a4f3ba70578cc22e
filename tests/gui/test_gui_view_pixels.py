"""Screen pixels the views produce through their own lookup tables: every stored dtype gets the
window/level grey, colour maps give the table's colour, and a cropped overlay covers exactly the
screen pixels of the voxels it labels at any zoom (no drift of a pixel at its edges)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtGui import QImage

from workstation.core.results import Label, LabelMap
from workstation.gui.mpr import Plane
from workstation.gui.view_widget import SliceView
from workstation.gui.viewer_model import ViewerModel
from workstation.gui.window_level import Window, grey_levels, lookup_table

pytestmark = pytest.mark.gui


def shown(qtbot, model: ViewerModel, plane: Plane, size=(240, 240)) -> SliceView:
    view = SliceView(model, plane)
    qtbot.addWidget(view)
    view.show_texts = False
    view.set_crosshair_visible(False)
    view.resize(*size)
    view.show()
    qtbot.waitExposed(view)
    return view


def rgb(view: SliceView) -> np.ndarray:
    image = view.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    data = np.frombuffer(image.constBits(), np.uint8).reshape(
        image.height(), image.bytesPerLine() // 4, 4
    )
    return data[:, : image.width(), 2::-1].astype(int)  # BGRA in memory -> RGB


@pytest.mark.parametrize(
    ("dtype", "value", "window"),
    [
        (np.int16, -300, Window(40, 400)),
        (np.uint16, 3000, Window(2500, 2000)),
        (np.uint8, 200, Window(128, 256)),
        (np.int8, -20, Window(0, 100)),
        (np.float32, 0.37, Window(0.5, 1.0)),
        (np.int32, 70000, Window(60000, 40000)),
    ],
)
def test_every_dtype_shows_the_window_grey(qtbot, synth, shots_dir, dtype, value, window):
    volume = synth.make_volume(synth.acquisitions["axial"])
    volume = volume.with_array(np.zeros(volume.shape, dtype=dtype))
    lps = np.array([2.0, 3.0, 0.0])
    synth.put_marker(volume, lps, value)
    model = ViewerModel(volume)
    model.set_cursor(lps)
    model.set_window(window)
    view = shown(qtbot, model, Plane.AXIAL)
    at = view.screen_position(lps)
    pixels = rgb(view)
    red, green, blue = pixels[at.y(), at.x()]
    assert red == green == blue
    assert red == pytest.approx(float(grey_levels(value, window)), abs=1.0)
    view.grab().save(str(shots_dir / f"dtype_{np.dtype(dtype).name}.png"))


def test_colour_map_gives_the_table_colour(qtbot, synth):
    volume = synth.make_volume(synth.acquisitions["axial"])
    lps = np.array([-3.0, 1.0, 0.0])
    synth.put_marker(volume, lps, 140)
    model = ViewerModel(volume)
    model.set_cursor(lps)
    model.set_window(Window(40, 400))  # 140 HU -> index 153
    model.set_colormap("hot")
    view = shown(qtbot, model, Plane.AXIAL)
    at = view.screen_position(lps)
    index = round(float(grey_levels(140, model.window)))
    expected = lookup_table("hot")[index]
    np.testing.assert_allclose(rgb(view)[at.y(), at.x()], expected, atol=1)
    model.set_invert(True)
    np.testing.assert_allclose(
        rgb(view)[at.y(), at.x()], lookup_table("hot", invert=True)[index], atol=1
    )


@pytest.mark.parametrize("size", [(200, 200), (317, 241), (480, 480)])
@pytest.mark.parametrize("plane", [Plane.AXIAL, Plane.CORONAL])
def test_opaque_overlay_covers_exactly_the_labelled_voxels(qtbot, synth, size, plane):
    """A bright block labelled voxel for voxel: with an opaque overlay, the red screen pixels
    are exactly the pixels that show the block white without it."""
    volume = synth.make_volume(
        synth.acquisitions["axial"], shape=(30, 40, 40), spacing=(0.7, 0.7, 2.0), background=-1000
    )
    volume.array[3:27, 10:25, 7:31] = 1000
    labels = np.zeros(volume.shape, dtype=np.uint8)
    labels[3:27, 10:25, 7:31] = 1
    model = ViewerModel(volume)
    model.set_window(Window(0, 2000))
    overlay = model.add_result(
        LabelMap(
            name="block", volume=volume.with_array(labels), labels=[Label(1, "b", (255, 0, 0))]
        ),
        opacity=1.0,
    )
    view = shown(qtbot, model, plane, size)
    with_overlay = rgb(view)
    red = (with_overlay[..., 0] == 255) & (with_overlay[..., 1] == 0)
    overlay.visible = False
    model.overlay_changed()
    white = rgb(view)[..., 1] == 255
    assert white.sum() > 1000
    assert np.array_equal(red, white)
