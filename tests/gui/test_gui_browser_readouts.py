"""Folder import from the browser (background, with progress), readouts under the mouse, cine,
and the About box."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from workstation.core.results import Label, LabelMap
from workstation.gui.browser import StudyBrowser
from workstation.gui.mpr import Plane
from workstation.gui.mpr_viewer import MprViewer
from workstation.gui.readouts import readout_text
from workstation.gui.viewer_model import ViewerModel

pytestmark = pytest.mark.gui


def test_importing_a_folder_runs_in_the_background_and_lists_the_series(
    qtbot, tmp_path, workstation_store
):
    from workstation.dicom.index_samples import write_series

    folder = tmp_path / "incoming"
    write_series(folder, slices=6, rows=8, columns=6, patient_id="PAT-7")
    (folder / "notes.txt").write_text("not an image")
    browser = StudyBrowser(workstation_store)
    qtbot.addWidget(browser)
    assert browser.visible_series() == []
    messages: list[str] = []
    browser.status.connect(messages.append)
    browser.import_paths([str(folder)])
    assert browser.import_running()
    qtbot.waitUntil(lambda: not browser.import_running(), timeout=60_000)
    assert len(browser.visible_series()) == 1
    assert browser.progress.isHidden()
    browser.search.setText("pat-7")
    assert len(browser.visible_series()) == 1
    assert any("import" in m for m in messages)


def test_readout_gives_position_voxel_value_and_overlay(qtbot, synth):
    volume = synth.make_volume(synth.acquisitions["coronal"], spacing=(0.5, 0.5, 2.0))
    point = np.array([2.0, -4.0, 3.0])
    i, j, k = synth.put_marker(volume, point, 321, radius=0)
    model = ViewerModel(volume)
    labels = volume.with_array(np.zeros(volume.shape, dtype=np.uint8))
    labels.array[k, j, i] = 3
    model.add_result(LabelMap(name="seg", volume=labels, labels=[Label(3, "Liver")]))
    centre = volume.index_to_world((i, j, k))
    text = readout_text(model, centre)
    assert f"({centre[0]:.1f}, {centre[1]:.1f}, {centre[2]:.1f}) mm" in text
    assert f"[{i}, {j}, {k}]" in text
    assert "321 HU" in text
    assert "seg: Liver" in text
    outside = readout_text(model, np.array([500.0, 0.0, 0.0]))
    assert "HU" not in outside and "mm" in outside


def test_cine_steps_through_the_slices(qtbot, synth):
    volume = synth.make_volume(synth.acquisitions["axial"], shape=(5, 16, 16))
    viewer = MprViewer(ViewerModel(volume), "1x1")
    qtbot.addWidget(viewer)
    axial = viewer.views[Plane.AXIAL]
    seen = set()
    axial.model.cursor_changed.connect(lambda _p: seen.add(axial.slice_index))
    viewer.set_cine(True, frames_per_second=100)
    qtbot.waitUntil(lambda: len(seen) == 5, timeout=5_000)
    viewer.set_cine(False)
    assert not viewer.cine_running


def test_about_box_names_versions_and_plugins(qtbot):
    import PySide6

    from workstation.gui.about import about_text

    text = about_text()
    assert f"PySide6 {PySide6.__version__}" in text
    assert "Analyses:" in text or "Plugins could not be listed" in text
