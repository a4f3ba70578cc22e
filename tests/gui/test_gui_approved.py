"""Rendered views compared with approved images (pyqtgraph's assertImageApproved habit).

The approved PNGs in tests/gui/approved/ were looked at by a person. When a change to the
rendering is intended, run with WORKSTATION_APPROVE=1 to rewrite them, look at them, and commit.
Texts are off in these scenes, so font differences between machines do not matter."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtGui import QImage

from workstation.core.results import HeatMap, Label, LabelMap
from workstation.gui.mpr import Plane
from workstation.gui.view_widget import SliceView
from workstation.gui.viewer_model import ViewerModel
from workstation.gui.window_level import Window

pytestmark = pytest.mark.gui
APPROVED = Path(__file__).parent / "approved"


def phantom(synth, acquisition: str, spacing=(1.0, 1.0, 1.5)):
    """A body ellipse with a bright spine and a lesion, in patient coordinates."""
    volume = synth.make_volume(
        synth.acquisitions[acquisition], shape=(30, 40, 40), spacing=spacing, background=-1000
    )
    nz, ny, nx = volume.shape
    k, j, i = np.mgrid[0:nz, 0:ny, 0:nx]
    lps = volume.index_to_world(np.stack([i, j, k], axis=-1).reshape(-1, 3)).reshape(nz, ny, nx, 3)
    x, y, z = lps[..., 0], lps[..., 1], lps[..., 2]
    volume.array[(x / 16) ** 2 + (y / 11) ** 2 < 1] = 40
    volume.array[(x**2 + (y - 7) ** 2 < 9)] = 700
    lesion = (x - 7) ** 2 + (y + 2) ** 2 + (z - 3) ** 2 < 16
    volume.array[lesion] = 120
    return volume, lesion


def render(qtbot, model: ViewerModel, plane: Plane) -> QImage:
    view = SliceView(model, plane)
    qtbot.addWidget(view)
    view.show_texts = False
    view.resize(200, 200)
    view.show()
    qtbot.waitExposed(view)
    return view.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)


def as_array(image: QImage) -> np.ndarray:
    ptr = image.constBits()
    data = np.frombuffer(ptr, dtype=np.uint8).reshape(image.height(), image.bytesPerLine() // 4, 4)
    return data[:, : image.width(), :3].astype(int)


def assert_image_approved(image: QImage, name: str) -> None:
    path = APPROVED / f"{name}.png"
    if os.environ.get("WORKSTATION_APPROVE") == "1":
        APPROVED.mkdir(exist_ok=True)
        image.save(str(path))
        return
    assert path.exists(), f"{path} missing: run with WORKSTATION_APPROVE=1, look at it, commit it"
    approved = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB32)
    assert (approved.width(), approved.height()) == (image.width(), image.height())
    difference = np.abs(as_array(approved) - as_array(image))
    changed = (difference.max(axis=2) > 40).mean()
    mean = difference.mean()
    assert changed < 0.005 and mean < 2.0, (
        f"{name}: {changed:.2%} of pixels differ from {path} (mean difference {mean:.2f})"
    )


def test_oblique_axial_with_label_overlay(qtbot, synth):
    volume, lesion = phantom(synth, "oblique")
    model = ViewerModel(volume)
    model.set_cursor((7.0, -2.0, 3.0))
    model.add_result(
        LabelMap(
            name="lesion",
            volume=volume.with_array(lesion.astype(np.uint8)),
            labels=[Label(1, "Lesion", (255, 60, 60))],
        ),
        opacity=0.6,
    )
    assert_image_approved(render(qtbot, model, Plane.AXIAL), "oblique_axial_label")


def test_coronal_heat_map_with_threshold(qtbot, synth):
    volume, _lesion = phantom(synth, "axial", spacing=(1.0, 1.0, 2.0))
    model = ViewerModel(volume)
    model.set_cursor((7.0, -2.0, 3.0))
    heat = np.clip(1 - np.abs(volume.array - 120) / 200, 0, 1).astype(np.float32)
    overlay = model.add_result(
        HeatMap(name="p", volume=volume.with_array(heat), value_range=(0, 1)), opacity=0.7
    )
    overlay.threshold = 0.7  # the body (0.6) stays grey, the lesion (1.0) is hot
    model.overlay_changed()
    assert_image_approved(render(qtbot, model, Plane.CORONAL), "coronal_heat")


def test_sagittal_bone_window_inverted(qtbot, synth):
    volume, _ = phantom(synth, "sagittal")
    model = ViewerModel(volume)
    model.set_window(Window(400, 1800))
    model.set_invert(True)
    assert_image_approved(render(qtbot, model, Plane.SAGITTAL), "sagittal_bone_inverted")
