"""A user's MONAI bundle classifier runs with its own preprocessing, and its explanation map
lands on the series' exact grid; weights for another kind of network are refused by name.

The bundle's network (in its scripts/ package) says "finding" when the brightest voxel of its
input, after the bundle's window, is above one half: p = 1 / (1 + exp(-400 (max - 0.5))). With
the bundle's window (-1000..1000 HU) a 25 HU blob gives max 0.5125, p = 0.993; with the
analysis's own window (-160..240 HU) the same blob would be 0.46, p < 0.001.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from workstation_monai_classification import plugin
from workstation_monai_classification.config import ANALYSIS_ID
from workstation_monai_classification.inference import run

from workstation.models import CONFIG_KEY, CheckpointError, model_cache, trust
from workstation.outputs.heatmaps import ucum_units
from workstation.plugins.api import AnalysisInputs, RunContext, Volume
from workstation.testing.bundles import write_bundle_folder

NETWORK_CODE = '''
import torch


class BrightestVoxel(torch.nn.Module):
    """Logits (100 - 200 m, 200 m - 100) of m, the brightest voxel of the input."""

    def __init__(self, spatial_dims: int = 2):
        super().__init__()
        conv = torch.nn.Conv2d if spatial_dims == 2 else torch.nn.Conv3d
        pool = torch.nn.AdaptiveMaxPool2d if spatial_dims == 2 else torch.nn.AdaptiveMaxPool3d
        self.features = conv(1, 1, 1)
        self.pool = pool(1)
        self.head = torch.nn.Linear(1, 2)

    def forward(self, image):
        return self.head(self.pool(self.features(image)).flatten(1))
'''

PREPROCESSING = [
    {"_target_": "LoadImaged", "keys": "image"},
    {"_target_": "EnsureChannelFirstd", "keys": "image"},
    {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
    {"_target_": "Spacingd", "keys": "image", "pixdim": [1.5, 1.5, 2.0], "mode": "bilinear"},
    {
        "_target_": "ScaleIntensityRanged",
        "keys": "image",
        "a_min": -1000,
        "a_max": 1000,
        "b_min": 0.0,
        "b_max": 1.0,
        "clip": True,
    },
]


def write_bundle(folder: Path, spatial_dims: int) -> Path:
    config = {
        "imports": ["$import scripts.net"],
        "bundle_root": ".",
        "network_def": {"_target_": "scripts.net.BrightestVoxel", "spatial_dims": spatial_dims},
        "preprocessing": {"_target_": "Compose", "transforms": PREPROCESSING},
        "postprocessing": {
            "_target_": "Compose",
            "transforms": [{"_target_": "Activationsd", "keys": "pred", "softmax": True}],
        },
    }
    metadata = {
        "name": "Bright spot",
        "version": "1.0.0",
        "monai_version": "1.6.1",
        "pytorch_version": "2.13.0",
        "network_data_format": {
            "outputs": {
                "pred": {"type": "probabilities", "channel_def": {"0": "clear", "1": "spot"}}
            }
        },
    }
    shape = (1, 1) + (1,) * spatial_dims
    state = {
        "features.weight": torch.ones(shape),
        "features.bias": torch.zeros(1),
        "head.weight": torch.tensor([[-200.0], [200.0]]),
        "head.bias": torch.tensor([100.0, -100.0]),
    }
    write_bundle_folder(folder, config, metadata, state)
    (folder / "scripts").mkdir()
    (folder / "scripts" / "__init__.py").write_text("")
    (folder / "scripts" / "net.py").write_text(NETWORK_CODE)
    return folder


def series() -> Volume:
    """Oblique: -100 HU with a 25 HU blob in slices 3-6."""
    values = np.full((10, 24, 22), -100, np.int16)
    values[3:7, 8:16, 7:15] = 25
    angle = np.deg2rad(20.0)
    direction = np.array(
        [[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]]
    )
    volume = Volume(values, (1.3, 1.2, 2.5), (5.0, -10.0, 20.0), direction)
    volume.metadata["modality"] = "CT"
    return volume


def context(volume: Volume, weights: Path, explanation: str = "gradcam") -> RunContext:
    spec = plugin.workstation_analyses()[0]
    return RunContext(
        analysis_id=ANALYSIS_ID,
        params=spec.coerce_parameters({"explanation": explanation}),
        inputs=AnalysisInputs(volume=volume),
        device="cpu",
        weights=weights,
    )


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_bundle_preprocessing_gives_its_probability_and_a_map_on_the_source_grid(
    tmp_path, spatial_dims
):
    torch.set_num_threads(1)
    bundle = write_bundle(tmp_path / f"spot{spatial_dims}d", spatial_dims)
    trust(bundle)
    model_cache().clear()
    volume = series()
    result = run(context(volume, bundle))
    assert result.labels == ["clear", "spot"]
    expected = 1.0 / (1.0 + math.exp(-400.0 * ((25 + 1000) / 2000 - 0.5)))  # 0.993
    assert result.probabilities[1] == pytest.approx(expected, abs=0.01)
    assert "the bundle's own" in result.description
    assert "Spacingd(pixdim=1.5x1.5x2)" in result.description
    assert "ScaleIntensityRanged(-1000..1000 -> 0..1, clipped)" in result.description
    assert f"network: {spatial_dims}-D" in result.description

    heat = result.explanation.volume
    assert heat.array.shape == volume.array.shape
    assert heat.spacing == volume.spacing and heat.origin == volume.origin
    np.testing.assert_array_equal(heat.direction, volume.direction)
    assert ucum_units(result.explanation.units) == ("1", None)  # a UCUM code as it is
    blob = volume.array == 25
    assert heat.array[blob].mean() > heat.array[~blob].mean()


def test_checkpoint_of_another_network_kind_is_refused_naming_the_file(tmp_path):
    checkpoint = tmp_path / "unet_weights.pt"
    torch.save({"state_dict": {}, CONFIG_KEY: {"network": {"name": "UNet"}}}, checkpoint)
    with pytest.raises(CheckpointError, match=r"unet_weights\.pt.*'UNet'"):
        run(context(series(), checkpoint, "none"))


def test_a_tiny_series_gets_a_field_of_view_note():
    volume = Volume(np.zeros((4, 24, 24), np.int16), (0.9, 0.9, 2.5))
    spec = plugin.workstation_analyses()[0]
    ctx = RunContext(
        analysis_id=ANALYSIS_ID,
        params=spec.coerce_parameters({"explanation": "none"}),
        inputs=AnalysisInputs(volume=volume),
        device="cpu",
    )
    assert "the series covers only 22 x 22 x 10 mm" in run(ctx).description


@pytest.mark.parametrize("bundle", [None, object()], ids=["checkpoint", "bundle"])
def test_a_network_with_another_number_of_outputs_is_a_weights_error_naming_the_file(bundle):
    from pathlib import Path

    import numpy as np
    import torch
    from workstation_monai_classification.inference import ClassifierModel, slice_probabilities

    from workstation.models import BundleError, CheckpointError

    three_outputs = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(3))
    model = ClassifierModel(
        three_outputs, {"classes": ["no lesion", "lesion"]}, Path("/models/mine.pt"), False, bundle
    )
    expected = CheckpointError if bundle is None else BundleError
    with pytest.raises(expected, match=r"/models/mine.pt: the network gives 3 outputs but 2"):
        slice_probabilities(model, np.zeros((2, 8, 8), np.float32))
