"""Zoo configs written for a training server are adapted to the user's machine."""

from __future__ import annotations

from pathlib import Path

from workstation.models.bundle_config import adapt_config


def test_devices_paths_and_workers_are_rewritten():
    config = {
        "bundle_root": ".",
        "device": "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')",
        "output_dir": "$@bundle_root + '/eval'",
        "dataset_dir": "/workspace/data/Task09_Spleen",
        "datalist": "$list(glob.glob('/workspace/data/imagesTs/*.nii.gz'))",
        "inferer": {"_target_": "SlidingWindowInferer", "sw_device": "cuda:1", "device": "cpu"},
        "cache": "/workspace/cache",
        "loaders": [{"num_workers": 8}, {"num_workers": 0}],
        "label": "cuda:0 is mentioned in prose",
    }
    adapted, notes = adapt_config(config, Path("/b"), "cpu", Path("/s"), num_workers=None)

    assert adapted["bundle_root"] == "/b"
    assert adapted["device"] == "$torch.device('cpu')"
    assert adapted["output_dir"] == "/s/output"
    assert adapted["dataset_dir"] == "/s/dataset"
    assert adapted["datalist"] == "$list(glob.glob('/s/workspace/data/imagesTs/*.nii.gz'))"
    assert adapted["inferer"]["sw_device"] == "cpu"
    assert adapted["cache"] == "/s/workspace/cache"
    assert adapted["loaders"][0]["num_workers"] <= 2 and adapted["loaders"][1]["num_workers"] == 0
    assert adapted["label"] == "cuda:0 is mentioned in prose"
    assert config["bundle_root"] == ".", "the caller's config is not modified"
    assert any(note.startswith("inferer::sw_device:") for note in notes)


def test_gpu_host_device_goes_into_expressions():
    config = {"net_device": '$torch.device("cuda:0")'}
    adapted, _ = adapt_config(config, Path("/b"), "cuda:1", Path("/s"), num_workers=0)
    assert adapted["net_device"] == "$torch.device('cuda:1')"
