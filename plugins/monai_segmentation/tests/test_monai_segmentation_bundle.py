"""A user's MONAI bundle runs with its own preprocessing, inferer and postprocessing, and the
labels land on the series' exact grid.

The bundle is shaped like the model zoo's spleen_ct_segmentation (LoadImaged, Orientationd,
Spacingd, ScaleIntensityRanged; SlidingWindowInferer; Activationsd, Invertd, AsDiscreted,
SaveImaged), with a 1x1x1 convolution as its network: label 1 exactly where the windowed
intensity is above one half. With the bundle's window (-1000..1000 HU) that is every voxel above
0 HU; with the analysis's own window (-200..300 HU) it would be only voxels above 50 HU, so the
expected label map tells which preprocessing ran.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage
from workstation_monai_segmentation import plugin
from workstation_monai_segmentation.config import ANALYSIS_ID
from workstation_monai_segmentation.inference import run

from workstation.models import model_cache, trust
from workstation.plugins.api import AnalysisInputs, LabelMap, Measurements, RunContext, Volume
from workstation.testing.bundles import write_bundle_folder

SPLEEN_LIKE_PREPROCESSING = [
    {"_target_": "LoadImaged", "keys": "image"},
    {"_target_": "EnsureChannelFirstd", "keys": "image"},
    {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
    {"_target_": "Spacingd", "keys": "image", "pixdim": [1.0, 1.0, 1.0], "mode": "bilinear"},
    {
        "_target_": "ScaleIntensityRanged",
        "keys": "image",
        "a_min": -1000,
        "a_max": 1000,
        "b_min": 0.0,
        "b_max": 1.0,
        "clip": True,
    },
    {"_target_": "EnsureTyped", "keys": "image"},
]


def write_threshold_bundle(folder: Path, postprocessing: bool = True) -> Path:
    """Zoo layout; network: logits (5 - 10 x, 10 x - 5), so label 1 where x > 0.5."""
    config = {
        "imports": ["$import glob"],
        "bundle_root": ".",
        "output_dir": "$@bundle_root + '/eval'",
        "device": "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')",
        "network_def": {
            "_target_": "torch.nn.Conv3d",
            "in_channels": 1,
            "out_channels": 2,
            "kernel_size": 1,
        },
        "network": "$@network_def.to(@device)",
        "preprocessing": {"_target_": "Compose", "transforms": SPLEEN_LIKE_PREPROCESSING},
        "inferer": {
            "_target_": "SlidingWindowInferer",
            "roi_size": [16, 16, 16],
            "sw_batch_size": 3,
            "overlap": 0.5,
        },
    }
    if postprocessing:
        config["postprocessing"] = {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "Activationsd", "keys": "pred", "softmax": True},
                {
                    "_target_": "Invertd",
                    "keys": "pred",
                    "transform": "@preprocessing",
                    "orig_keys": "image",
                    "nearest_interp": False,
                    "to_tensor": True,
                },
                {"_target_": "AsDiscreted", "keys": "pred", "argmax": True},
                {"_target_": "SaveImaged", "keys": "pred", "output_dir": "@output_dir"},
            ],
        }
    metadata = {
        "name": "Soft tissue above water",
        "version": "0.1.0",
        "monai_version": "1.6.1",
        "pytorch_version": "2.13.0",
        "network_data_format": {
            "outputs": {
                "pred": {
                    "type": "image",
                    "format": "segmentation",
                    "channel_def": {"0": "background", "1": "denser than water"},
                }
            }
        },
    }
    state = {
        "weight": torch.tensor([-10.0, 10.0]).reshape(2, 1, 1, 1, 1),
        "bias": torch.tensor([5.0, -5.0]),
    }
    return write_bundle_folder(folder, config, metadata, state)


def oblique_series() -> Volume:
    """Tilted, anisotropic: air-like -100 HU around a 25 HU block holding a 100 HU core."""
    values = np.full((12, 22, 20), -100, np.int16)
    values[2:10, 4:18, 4:16] = 25
    values[4:8, 8:14, 7:13] = 100
    angle = np.deg2rad(17.0)
    tilt = np.array(
        [[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]]
    )
    turn = np.array([[np.cos(0.3), -np.sin(0.3), 0], [np.sin(0.3), np.cos(0.3), 0], [0, 0, 1]])
    volume = Volume(values, (1.4, 1.6, 2.5), (-12.0, 30.0, -40.0), turn @ tilt)
    volume.metadata["modality"] = "CT"
    return volume


def context(volume: Volume, weights: Path) -> RunContext:
    spec = plugin.workstation_analyses()[0]
    return RunContext(
        analysis_id=ANALYSIS_ID,
        params=spec.coerce_parameters({}),
        inputs=AnalysisInputs(volume=volume),
        device="cpu",
        weights=weights,
    )


def away_from_edges(mask: np.ndarray) -> np.ndarray:
    """Voxels whose 3x3x3 neighbourhood is all one value: resampling cannot blur them."""
    return ndimage.maximum_filter(mask, 3) == ndimage.minimum_filter(mask, 3)


@pytest.fixture
def series() -> Volume:
    torch.set_num_threads(1)
    return oblique_series()


@pytest.mark.parametrize("postprocessing", [True, False], ids=["its-invertd", "host-invertd"])
def test_bundle_preprocessing_decides_the_labels_on_the_exact_source_grid(
    tmp_path, series, postprocessing
):
    bundle = write_threshold_bundle(tmp_path / "bundle", postprocessing)
    trust(bundle)
    model_cache().clear()
    label_map, table = run(context(series, bundle))
    assert isinstance(label_map, LabelMap) and isinstance(table, Measurements)
    out = label_map.volume
    assert out.array.shape == series.array.shape
    assert out.spacing == series.spacing and out.origin == series.origin
    np.testing.assert_array_equal(out.direction, series.direction)
    assert series.geometry.orientation_label() == "oblique"

    expected = (series.array > 0).astype(np.uint8)  # the bundle's window: above 0 HU
    sure = away_from_edges(expected)
    assert sure.sum() > 0.5 * expected.size
    np.testing.assert_array_equal(out.array[sure], expected[sure])
    # the 25 HU block: above the bundle's threshold, below the one the defaults would give
    block = (series.array == 25) & sure
    assert block.sum() > 100 and np.all(out.array[block] == 1)

    assert [(lab.value, lab.name) for lab in label_map.labels] == [(1, "denser than water")]
    for text in (label_map.description, table.description):
        assert "the bundle's own" in text
        assert "Spacingd(pixdim=1x1x1)" in text
        assert "ScaleIntensityRanged(-1000..1000 -> 0..1, clipped)" in text
        assert "SlidingWindowInferer: window 16x16x16, overlap 0.5, 3 per batch" in text
    if postprocessing:
        assert "back onto the series' grid by the bundle's Invertd" in label_map.description
        assert "not applied: SaveImaged" in label_map.description
    else:
        assert "MONAI Invertd (linear interpolation)" in label_map.description
    assert not list(bundle.rglob("*.nii*"))  # its SaveImaged did not write into the bundle


def test_a_tiny_series_gets_a_field_of_view_note():
    values = np.zeros((4, 24, 24), np.int16)
    volume = Volume(values, (0.9, 0.9, 2.5))
    spec = plugin.workstation_analyses()[0]
    ctx = RunContext(
        analysis_id=ANALYSIS_ID,
        params=spec.coerce_parameters({}),
        inputs=AnalysisInputs(volume=volume),
        device="cpu",
    )
    label_map, _ = run(ctx)
    assert "the series covers only 22 x 22 x 10 mm" in label_map.description
    assert label_map.volume.array.shape == values.shape
