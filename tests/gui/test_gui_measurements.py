"""Distances and ROI figures a radiologist reads off, their persistence per series, CSV export."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from workstation.gui.measurements import export_csv, load_measurements, measure
from workstation.gui.mpr import Plane, slice_grid


def test_distance_uses_the_spacing_of_the_plane(synth):
    volume = synth.make_volume(synth.acquisitions["axial"], spacing=(0.5, 0.5, 3.0))
    coronal = slice_grid(volume.geometry, Plane.CORONAL)  # rows are 3 mm slices
    m = measure("distance", coronal, volume.array, 4, [(2.0, 1.0), (6.0, 4.0)])
    assert m.stats["length_mm"] == pytest.approx(np.hypot(4 * 0.5, 3 * 3.0))


def test_rectangle_statistics_match_the_pixels_inside(synth):
    volume = synth.make_volume(synth.acquisitions["axial"], spacing=(0.7, 0.7, 2.0))
    rng = np.random.default_rng(3)
    volume.array[:] = rng.integers(-100, 300, size=volume.shape)
    grid = slice_grid(volume.geometry, Plane.AXIAL)
    m = measure("rectangle", grid, volume.array, 5, [(3, 4), (12, 10)])
    inside = volume.array[5, 4:11, 3:13].astype(float)
    assert m.stats["pixels"] == inside.size
    assert m.stats["area_mm2"] == pytest.approx(inside.size * 0.49)
    assert m.stats["mean"] == pytest.approx(inside.mean())
    assert m.stats["sd"] == pytest.approx(inside.std(ddof=1))
    assert (m.stats["min"], m.stats["max"]) == (inside.min(), inside.max())


def test_ellipse_and_polygon_areas(synth):
    volume = synth.make_volume(synth.acquisitions["axial"], shape=(4, 200, 200))
    grid = slice_grid(volume.geometry, Plane.AXIAL)
    ellipse = measure("ellipse", grid, volume.array, 1, [(20, 40), (120, 100)])
    assert ellipse.stats["area_mm2"] == pytest.approx(np.pi * 50 * 30, rel=0.02)
    triangle = measure("polygon", grid, volume.array, 1, [(10, 10), (110, 10), (10, 90)])
    assert triangle.stats["area_mm2"] == pytest.approx(100 * 80 / 2, rel=0.03)
    with pytest.raises(ValueError, match="at least 3"):
        measure("polygon", grid, volume.array, 1, [(1, 1), (2, 2)])


def test_measurements_are_kept_per_series_and_exported(qtbot, synth, workstation_store, tmp_path):
    pytest.importorskip("pytestqt")
    from workstation.gui.tools import MeasurementsPanel
    from workstation.gui.view_widget import SliceView
    from workstation.gui.viewer_model import ViewerModel

    volume = synth.make_volume(synth.acquisitions["axial"])
    volume.array[:] = 50
    model = ViewerModel(volume)
    view = SliceView(model, Plane.AXIAL)
    panel = MeasurementsPanel(workstation_store)
    panel.attach([view], "1.2.3.4")
    panel.chooser.setCurrentText("distance")
    start = view.grid.to_world(2, 3, view.slice_index)
    end = view.grid.to_world(10, 3, view.slice_index)
    for phase, point in (("start", start), ("move", end), ("finish", end)):
        view.tool(phase, view, point)
    panel.chooser.setCurrentText("rectangle")
    for phase, point in (
        ("start", start),
        ("move", end + np.array([0, 4, 0])),
        ("finish", end + np.array([0, 4, 0])),
    ):
        view.tool(phase, view, point)
    assert [m.kind for m in panel.measurements] == ["distance", "rectangle"]
    assert panel.measurements[0].stats["length_mm"] == pytest.approx(8.0)
    assert panel.measurements[1].stats["mean"] == pytest.approx(50)

    kept = load_measurements(workstation_store, "1.2.3.4")
    assert [(m.kind, m.slice) for m in kept] == [
        ("distance", view.slice_index),
        ("rectangle", view.slice_index),
    ]
    assert load_measurements(workstation_store, "another series") == []
    reopened = MeasurementsPanel(workstation_store)
    reopened.attach([SliceView(model, Plane.AXIAL)], "1.2.3.4")
    assert reopened.list.count() == 2

    panel.list.setCurrentRow(0)
    panel.delete_selected()
    assert [m.kind for m in load_measurements(workstation_store, "1.2.3.4")] == ["rectangle"]

    out = tmp_path / "m.csv"
    export_csv(kept, out)
    rows = list(csv.DictReader(out.open()))
    assert rows[0]["kind"] == "distance" and float(rows[0]["length_mm"]) == pytest.approx(8.0)
    assert float(rows[1]["area_mm2"]) == pytest.approx(9 * 5)
