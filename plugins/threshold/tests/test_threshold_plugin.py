"""Tests of the threshold plugin, written with the fixtures every plugin author gets from
`workstation.testing` (no set-up code of our own)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from workstation_threshold.segment import find_components

from workstation.plugins.api import Volume


def test_finds_the_spine_with_its_volume(synthetic_ct_series, synthetic_ct_volume, run_analysis):
    results = run_analysis("threshold.segment", synthetic_ct_volume, params={"lower": 200})
    label_map = results.one("label_map")
    table = results.one("measurements")

    bone = synthetic_ct_series.labels == synthetic_ct_series.label_id("bone")
    np.testing.assert_array_equal(label_map.volume.array > 0, bone)
    voxel_ml = np.prod(synthetic_ct_series.spacing) / 1000.0
    row = table.as_dicts()[0]
    assert row["volume"] == pytest.approx(bone.sum() * voxel_ml, abs=1e-3)
    assert table.units["volume"] == "mL"
    assert label_map.volume.geometry.is_close(synthetic_ct_volume.geometry)
    assert label_map.volume.source == synthetic_ct_volume.source  # overlays on its series


def test_components_are_largest_first_and_small_ones_dropped():
    array = np.full((4, 10, 10), -1000, np.int16)
    array[0:2, 0:2, 0:2] = 100  # 8 voxels = 8 mL at 10 mm voxels
    array[0:4, 5:8, 5:8] = 100  # 36 voxels
    array[3, 0, 9] = 100  # 1 voxel
    volume = Volume(array, spacing=(10.0, 10.0, 10.0))
    labels, components = find_components(volume, 0, 200, min_volume_ml=2.0)
    assert [c.voxels for c in components] == [36, 8]
    assert [c.volume_ml for c in components] == [36.0, 8.0]
    assert labels[3, 0, 9] == 0 and labels[2, 6, 6] == 1 and labels[1, 1, 1] == 2
    np.testing.assert_allclose(components[0].centroid_lps, (60.0, 60.0, 15.0))
    _, only_largest = find_components(volume, 0, 200, max_components=1)
    assert [c.voxels for c in only_largest] == [36]


def test_connectivity_joins_diagonal_voxels_only_when_asked():
    array = np.zeros((1, 3, 3), np.int16)
    array[0, 0, 0] = array[0, 1, 1] = 1
    volume = Volume(array)
    assert len(find_components(volume, 1, 1, connectivity="faces")[1]) == 2
    assert len(find_components(volume, 1, 1, connectivity="edges")[1]) == 1


def test_lower_above_upper_fails_with_a_clear_message(synthetic_ct_volume, run_analysis):
    results = run_analysis(
        "threshold.segment", synthetic_ct_volume, params={"lower": 500, "upper": 100}, check=False
    )
    assert results.outcome.outcome == "failed"
    assert "lower (500 HU) is above upper (100 HU)" in results.outcome.error


def test_parameters_out_of_range_are_refused(synthetic_ct_volume, run_analysis):
    results = run_analysis(
        "threshold.segment", synthetic_ct_volume, params={"lower": -99999}, check=False
    )
    assert results.outcome.outcome == "refused"
    assert "'lower'" in results.outcome.error and "minimum" in results.outcome.error


def test_declared_and_listed_without_importing_the_compute_module(plugin_manager_factory):
    registry = plugin_manager_factory("workstation_threshold.plugin").registry()
    assert registry.problems == []
    spec = registry.analysis("threshold.segment").spec
    assert spec.returns == ("label_map", "measurements")
    assert [p.name for p in spec.parameters] == [
        "lower",
        "upper",
        "min_volume_ml",
        "max_components",
        "connectivity",
    ]
    code = (
        "import sys, workstation_threshold.plugin as p; p.workstation_analyses(); "
        "print('workstation_threshold.segment' in sys.modules, 'scipy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_installed_through_its_entry_point():
    from importlib.metadata import entry_points

    (entry,) = [e for e in entry_points(group="workstation.plugins") if e.name == "threshold"]
    assert entry.value == "workstation_threshold.plugin"
    assert entry.dist.metadata["Name"] == "workstation-threshold"
