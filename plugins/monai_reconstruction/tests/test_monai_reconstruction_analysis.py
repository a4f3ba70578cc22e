"""The analysis as a user runs it: through the host's runner, on a series' own grid."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from workstation_monai_reconstruction.config import ANALYSIS_ID
from workstation_monai_reconstruction.samples import MR_INTENSITY

from workstation.plugins.api import Volume
from workstation.testing.phantoms import ct_phantom

PLUGINS = ["workstation_monai_reconstruction.plugin"]


def _by_name(results, kind):
    return {r.name: r for r in results.of_kind(kind)}


def _metrics(results):
    return {row["metric"]: row["value"] for row in results.one("measurements").as_dicts()}


@pytest.fixture
def mr_volume():
    _, labels = ct_phantom((6, 128, 112), (1.2, 1.2, 4.0), seed=77, noise_hu=0.0)
    values = MR_INTENSITY[labels] + np.random.default_rng(77).normal(0, 5, labels.shape)
    array = np.clip(np.rint(values), 0, 4095).astype(np.int16)
    direction = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # coronal
    return Volume(
        array, (1.2, 1.2, 4.0), (-40.0, 10.0, 30.0), direction, metadata={"modality": "MR"}
    )


def test_ct_simulation_restores_on_the_source_grid(synthetic_ct_volume, run_analysis):
    results = run_analysis(
        ANALYSIS_ID, synthetic_ct_volume, params={"simulate": True}, plugins=PLUGINS
    )
    volumes = _by_name(results, "derived_volume")
    assert set(volumes) == {"restored", "degraded"}
    restored = volumes["restored"].volume
    heat = results.one("heat_map").volume
    for image in (restored, volumes["degraded"].volume, heat):
        assert image.array.shape == synthetic_ct_volume.array.shape
        assert image.geometry.is_close(synthetic_ct_volume.geometry)
        assert image.source == synthetic_ct_volume.source
    assert restored.array.dtype == synthetic_ct_volume.array.dtype  # HU as the series stores them
    assert "DEMO WEIGHTS" in volumes["restored"].description
    assert restored.metadata["demo_weights"] is True
    np.testing.assert_allclose(
        heat.array,
        restored.array.astype(np.float32) - volumes["degraded"].volume.array,
        atol=1.0,  # the restored series is rounded to whole HU
    )
    metrics = _metrics(results)
    assert metrics["psnr_restored"] - metrics["psnr_degraded"] == pytest.approx(
        metrics["psnr_gain"], abs=1e-3
    )
    assert metrics["psnr_gain"] >= 3.0
    assert metrics["ssim_restored"] > metrics["ssim_degraded"]


def test_more_simulated_noise_gives_a_worse_degraded_input(synthetic_ct_volume, run_analysis):
    psnr = [
        _metrics(
            run_analysis(
                ANALYSIS_ID,
                synthetic_ct_volume,
                params={"simulate": True, "noise_hu": noise},
                plugins=PLUGINS,
            )
        )["psnr_degraded"]
        for noise in (20.0, 80.0)
    ]
    assert psnr[0] > psnr[1] + 6.0


def test_ct_without_simulation_denoises_the_series_itself(
    synthetic_ct_series, synthetic_ct_volume, run_analysis
):
    results = run_analysis(ANALYSIS_ID, synthetic_ct_volume, plugins=PLUGINS)
    assert set(_by_name(results, "derived_volume")) == {"restored"}
    metrics = _metrics(results)
    assert "psnr_gain" not in metrics and metrics["mean_abs_change"] > 0
    assert "simulate" in results.one("measurements").description
    restored = results.one("derived_volume").volume.array.astype(float)
    liver = synthetic_ct_series.labels == synthetic_ct_series.label_id("liver")
    inside = ndimage.binary_erosion(liver, np.ones((1, 5, 5)))  # away from the edges
    assert inside.sum() > 100
    noise_before = synthetic_ct_volume.array[inside].std()
    assert restored[inside].std() < 0.6 * noise_before
    assert abs(restored[inside].mean() - synthetic_ct_volume.array[inside].mean()) < 5.0


def test_auto_mode_reconstructs_mr_from_undersampled_kspace(mr_volume, run_analysis):
    results = run_analysis(
        ANALYSIS_ID,
        mr_volume,
        params={"simulate": True, "acceleration": 4, "mask": "random"},
        plugins=PLUGINS,
    )
    restored = _by_name(results, "derived_volume")["restored"]
    assert "MR k-space reconstruction" in restored.description
    assert restored.volume.geometry.is_close(mr_volume.geometry)
    assert "4x random k-space" in results.one("measurements").description
    assert _metrics(results)["psnr_gain"] >= 3.0


def test_mode_can_be_forced_and_a_wrong_mode_is_refused(mr_volume, run_analysis):
    results = run_analysis(ANALYSIS_ID, mr_volume, params={"mode": "mr_kspace"}, plugins=PLUGINS)
    assert results.one("derived_volume").volume.array.shape == mr_volume.array.shape
    refused = run_analysis(
        ANALYSIS_ID, mr_volume, params={"mode": "pet"}, plugins=PLUGINS, check=False
    )
    assert refused.outcome.outcome == "refused"
    assert "'mode'" in refused.outcome.error
