"""What the restoration will not do, said plainly: a MONAI bundle as weights, slices too small
for the networks; and what it writes: CT never below air, map units in UCUM."""

from __future__ import annotations

import json

import numpy as np
import pytest
from workstation_monai_reconstruction.config import ANALYSIS_ID
from workstation_monai_reconstruction.restore import AIR_HU, MIN_SLICE_PIXELS

from workstation.outputs.heatmaps import ucum_units
from workstation.plugins.api import Volume

PLUGINS = ["workstation_monai_reconstruction.plugin"]


def ct(shape, spacing=(1.0, 1.0, 3.0), value=40):
    volume = Volume(np.full(shape, value, np.int16), spacing)
    volume.metadata.update({"modality": "CT", "series_description": "Tiny CT"})
    return volume


def test_a_bundle_folder_is_refused_naming_it_and_what_the_analysis_needs(tmp_path, run_analysis):
    bundle = tmp_path / "spleen_like"
    (bundle / "configs").mkdir(parents=True)
    (bundle / "models").mkdir()
    marker = tmp_path / "code_ran"
    config = {"imports": [f"$open({str(marker)!r}, 'w').close()"], "network_def": {}}
    (bundle / "configs" / "inference.json").write_text(json.dumps(config))
    metadata = {"name": "Spleen-like", "version": "0.5.1", "monai_version": "1.6.1"}
    (bundle / "configs" / "metadata.json").write_text(json.dumps(metadata))
    (bundle / "models" / "model.pt").write_bytes(b"")
    results = run_analysis(
        ANALYSIS_ID, ct((4, 32, 32)), weights=bundle, plugins=PLUGINS, check=False
    )
    outcome = results.outcome
    assert outcome.outcome == "refused" and outcome.user_facing
    assert f"'Spleen-like' 0.5.1 ({bundle.resolve()})" in outcome.error
    assert "ct_denoise and mr_kspace" in outcome.error
    assert "TypeError" not in outcome.error
    assert not marker.exists()  # refused from metadata.json alone: nothing in it ran


@pytest.mark.parametrize("shape", [(3, 8, 8), (4, 64, 12)])
def test_slices_smaller_than_the_networks_take_are_refused_naming_the_size(shape, run_analysis):
    results = run_analysis(ANALYSIS_ID, ct(shape), plugins=PLUGINS, check=False)
    outcome = results.outcome
    assert outcome.outcome == "refused" and outcome.user_facing
    assert f"Tiny CT is {shape[1]} x {shape[2]} pixels per slice ({shape[0]} slices)" in (
        outcome.error
    )
    assert f"at least {MIN_SLICE_PIXELS} x {MIN_SLICE_PIXELS} pixels" in outcome.error
    assert "when training" not in outcome.error


def test_smallest_slices_run_and_restored_ct_stays_above_air(run_analysis):
    # air with strong simulated noise: a denoiser's output dips below -1024 HU without the floor
    volume = ct((3, MIN_SLICE_PIXELS, MIN_SLICE_PIXELS), value=-1024)
    params = {"simulate": True, "noise_hu": 300.0}
    results = run_analysis(ANALYSIS_ID, volume, params=params, plugins=PLUGINS)
    restored = {r.name: r for r in results.of_kind("derived_volume")}["restored"].volume
    assert restored.array.shape == volume.array.shape
    assert restored.array.min() >= AIR_HU
    degraded = {r.name: r for r in results.of_kind("derived_volume")}["degraded"].volume
    assert degraded.array.min() < AIR_HU  # the input really went below the floor
    heat = results.one("heat_map")
    assert ucum_units(heat.units) == ("[hnsf'U]", None)  # a UCUM code: the writers keep it
