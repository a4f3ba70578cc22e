"""The main window: browser listing and opening a stored series, layouts, presets, identity toggle,
settings, and `workstation view --screenshot`."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings
from PySide6.QtGui import QImage

from workstation.core.results import Label, LabelMap
from workstation.gui.main_window import MainWindow
from workstation.gui.mpr import Plane
from workstation.gui.readouts import corner_texts

pytestmark = pytest.mark.gui


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def test_browser_lists_the_store_and_opens_a_series(
    qtbot, synthetic_ct_series, workstation_store, settings, shots_dir
):
    window = MainWindow(workstation_store, settings=settings)
    qtbot.addWidget(window)
    window.resize(1300, 700)
    window.show()
    browser = window.browser
    assert browser.visible_series() == [synthetic_ct_series.series_id]
    browser.search.setText("no such patient")
    assert browser.visible_series() == []
    browser.search.setText("")
    browser.series_opened.emit(synthetic_ct_series.series_id)
    model = window.model
    assert model is not None and model.volume.shape == synthetic_ct_series.hu.shape
    np.testing.assert_array_equal(model.volume.array, synthetic_ct_series.hu)
    assert model.info["synthetic"] is True
    assert "SYNTHETIC" in corner_texts(window.viewer.views[Plane.AXIAL])["top_right"]
    qtbot.wait(50)
    window.grab().save(str(shots_dir / "main_window_series.png"))


def test_identity_toggle_hides_patient_text_but_keeps_synthetic_mark(
    qtbot, synthetic_ct_volume, workstation_store, settings
):
    window = MainWindow(workstation_store, settings=settings, with_browser=False)
    qtbot.addWidget(window)
    info = {"patient_name": "DOE^JANE", "patient_id": "MRN123", "synthetic": True, "modality": "CT"}
    window.show_volume(synthetic_ct_volume, info)
    view = window.viewer.views[Plane.AXIAL]
    shown = corner_texts(view)
    assert "DOE JANE" in shown["top_left"] and "ID MRN123" in shown["top_left"]
    window.identity_action.trigger()  # View > Hide patient identity (Ctrl+H)
    hidden = corner_texts(view)
    assert not any("DOE" in line or "MRN123" in line for lines in hidden.values() for line in lines)
    assert "SYNTHETIC" in hidden["top_right"]


def test_layouts_presets_and_settings(qtbot, synthetic_ct_volume, workstation_store, settings):
    window = MainWindow(workstation_store, settings=settings, with_browser=False)
    qtbot.addWidget(window)
    window.show()
    window.show_volume(synthetic_ct_volume, {"modality": "CT"})
    viewer = window.viewer
    window.set_layout("1x1")
    assert [p for p, cell in viewer.cells.items() if not cell.isHidden()] == [Plane.AXIAL]
    window.set_layout("2x2")
    assert all(not cell.isHidden() for cell in viewer.cells.values())
    assert not viewer.info_panel.isHidden()
    assert settings.value("viewer/layout") == "2x2"
    window.apply_preset("Lung")
    assert (window.model.window.center, window.model.window.width) == (-600, 1500)
    window.apply_preset("Auto")
    assert window.model.window.width > 0
    again = MainWindow(workstation_store, settings=settings, with_browser=False)
    qtbot.addWidget(again)
    assert again.layout_name == "2x2"


def test_derived_volume_opens_beside_with_a_linked_crosshair(
    qtbot, synthetic_ct_volume, workstation_store, settings
):
    from workstation.core.results import DerivedVolume

    window = MainWindow(workstation_store, settings=settings, with_browser=False)
    qtbot.addWidget(window)
    window.show_volume(synthetic_ct_volume, {"modality": "CT"})
    smoothed = synthetic_ct_volume.with_array(synthetic_ct_volume.array // 2)
    window.show_results([DerivedVolume(name="half", volume=smoothed)])
    assert len(window.models) == 2
    source, derived = window.models
    target = source.volume.index_to_world((10, 20, 3))
    source.set_cursor(target)
    np.testing.assert_allclose(derived.cursor, target)
    assert (
        window.viewers[1].views[Plane.AXIAL].slice_index
        == window.viewers[0].views[Plane.AXIAL].slice_index
    )


def run_cli(*argv: str) -> int:
    from workstation.cli import main

    return main(list(argv))


def red_pixels(path) -> int:
    image = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB32)
    ptr = image.constBits()
    array = np.frombuffer(ptr, dtype=np.uint8).reshape(image.height(), image.bytesPerLine() // 4, 4)
    b, g, r = array[..., 0].astype(int), array[..., 1].astype(int), array[..., 2].astype(int)
    return int(((r > g + 60) & (r > b + 60)).sum())


def test_view_command_writes_a_screenshot_with_the_overlay(tmp_path, synth, shots_dir, capsys):
    import nibabel as nib

    volume = synth.make_volume(
        synth.acquisitions["axial"], shape=(20, 40, 40), spacing=(0.8, 0.8, 2.0)
    )
    volume.array[:] = 40
    image_path = tmp_path / "ct.nii.gz"
    nib.save(volume.to_nifti(), str(image_path))
    labels = volume.with_array(np.zeros(volume.shape, dtype=np.int16))
    synth.put_marker(labels, np.zeros(3), 1, radius=3)
    label_path = tmp_path / "lesion.nii.gz"
    nib.save(labels.to_nifti(), str(label_path))
    (tmp_path / "lesion.labels.json").write_text(
        '{"labels": [{"value": 1, "name": "Lesion", "color": [255, 0, 0]}]}'
    )

    plain = shots_dir / "view_plain.png"
    with_overlay = shots_dir / "view_overlay.png"
    assert run_cli("view", str(image_path), "--screenshot", str(plain), "--size", "900x400") == 0
    assert (
        run_cli(
            "view",
            str(image_path),
            "--overlay",
            str(label_path),
            "--screenshot",
            str(with_overlay),
            "--size",
            "900x400",
        )
        == 0
    )
    assert (QImage(str(plain)).width(), QImage(str(plain)).height()) == (900, 400)
    # the lesion, in all three views (the plain shot has only the red crosshair line)
    assert red_pixels(with_overlay) - red_pixels(plain) > 300


def test_view_command_names_what_it_cannot_open(tmp_path, capsys):
    missing = tmp_path / "nothing-here"
    assert run_cli("view", str(missing), "--screenshot", str(tmp_path / "x.png")) == 1
    assert str(missing) in capsys.readouterr().err
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not nifti")
    assert run_cli("view", str(bad), "--screenshot", str(tmp_path / "x.png")) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "NIfTI" in err
    assert run_cli("view", str(bad), "--size", "big") == 2
    assert "--size" in capsys.readouterr().err


def test_label_overlay_from_a_label_map_result_lists_its_legend(
    qtbot, synthetic_ct_series, synthetic_ct_volume, workstation_store, settings
):
    window = MainWindow(workstation_store, settings=settings, with_browser=False)
    qtbot.addWidget(window)
    window.show_volume(synthetic_ct_volume, {"modality": "CT"})
    truth = synthetic_ct_volume.with_array(synthetic_ct_series.labels.astype(np.int16))
    names = synthetic_ct_series.label_names
    result = LabelMap(
        name="truth",
        volume=truth,
        labels=[Label(v, n, (200, 50 + 20 * v, 50)) for v, n in names.items()],
    )
    window.show_results([result])
    overlay = window.model.overlays[0]
    voxel_ml = float(np.prod(synthetic_ct_volume.spacing)) / 1000
    for entry in overlay.legend:
        assert entry.volume_ml == pytest.approx(
            (synthetic_ct_series.labels == entry.value).sum() * voxel_ml
        )


def test_view_command_opens_a_stored_series_by_id(
    synthetic_ct_series, workstation_store, shots_dir
):
    shot = shots_dir / "view_series_uid.png"
    code = run_cli(
        "--store",
        str(workstation_store),
        "view",
        synthetic_ct_series.series_id,
        "--screenshot",
        str(shot),
        "--size",
        "1000x420",
        "--preset",
        "Bone",
        "--hide-identity",
    )
    assert code == 0
    assert QImage(str(shot)).width() == 1000


def test_view_command_names_an_unknown_series(workstation_store, capsys):
    assert (
        run_cli("--store", str(workstation_store), "view", "1.2.3.999", "--screenshot", "x.png")
        == 1
    )
    assert "1.2.3.999" in capsys.readouterr().err


def test_classification_shows_probability_bars_and_its_explanation_overlay(
    qtbot, synthetic_ct_volume, workstation_store, settings
):
    from workstation.core.results import Classification, HeatMap

    window = MainWindow(workstation_store, settings=settings, with_browser=False)
    qtbot.addWidget(window)
    window.show_volume(synthetic_ct_volume, {"modality": "CT"})
    saliency = synthetic_ct_volume.with_array(np.ones(synthetic_ct_volume.shape, dtype=np.float32))
    result = Classification(
        name="nodule",
        labels=["benign", "malignant"],
        probabilities=[0.25, 0.75],
        explanation=HeatMap(name="saliency", volume=saliency, value_range=(0.0, 1.0)),
    )
    window.show_results([result])
    (plot,) = window.results_panel.bar_plots
    bars = [item for item in plot.getPlotItem().items if type(item).__name__ == "BarGraphItem"]
    np.testing.assert_allclose(bars[0].opts["width"], [0.25, 0.75])
    assert [o.name for o in window.model.overlays] == ["saliency"]
