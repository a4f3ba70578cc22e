"""Bundles in MONAI model-zoo layout, built in tmp_path with random (seeded) weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

TINY_UNET = {
    "_target_": "UNet",
    "spatial_dims": 3,
    "in_channels": 1,
    "out_channels": 2,
    "channels": [4, 8],
    "strides": [2],
    "num_res_units": 0,
}

METADATA = {
    "schema": "https://example.invalid/meta_schema.json",
    "version": "0.5.3",
    "name": "Tiny spleen CT segmentation",
    "monai_version": "1.6.0",
    "pytorch_version": "2.13.0",
    "numpy_version": "2.0.0",
    "required_packages_version": {"nibabel": "5.2.0", "pytorch-ignite": "0.5.0"},
    "network_data_format": {
        "inputs": {"image": {"type": "image", "num_channels": 1, "channel_def": {"0": "image"}}},
        "outputs": {
            "pred": {
                "type": "image",
                "format": "segmentation",
                "num_channels": 2,
                "channel_def": {"0": "background", "1": "spleen"},
            }
        },
    },
}


def zoo_inference_config(network_def: dict[str, Any]) -> dict[str, Any]:
    """Shaped like the model zoo's spleen_ct_segmentation inference.json, tiny."""
    return {
        "imports": ["$import glob", "$import os"],
        "bundle_root": ".",
        "output_dir": "$@bundle_root + '/eval'",
        "dataset_dir": "/workspace/data/Task09_Spleen",
        "datalist": "$list(sorted(glob.glob(@dataset_dir + '/imagesTs/*.nii.gz')))",
        "device": "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')",
        "network_def": network_def,
        "network": "$@network_def.to(@device)",
        "preprocessing": {
            "_target_": "Compose",
            "transforms": [
                {
                    "_target_": "ScaleIntensityRanged",
                    "keys": "image",
                    "a_min": -57,
                    "a_max": 164,
                    "b_min": 0.0,
                    "b_max": 1.0,
                    "clip": True,
                },
                {"_target_": "EnsureTyped", "keys": "image"},
            ],
        },
        "dataset": {
            "_target_": "Dataset",
            "data": "$[{'image': i} for i in @datalist]",
            "transform": "@preprocessing",
        },
        "dataloader": {
            "_target_": "DataLoader",
            "dataset": "@dataset",
            "batch_size": 1,
            "num_workers": 4,
        },
        "inferer": {
            "_target_": "SlidingWindowInferer",
            "roi_size": [16, 16, 16],
            "sw_batch_size": 4,
            "overlap": 0.5,
        },
        "postprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "Activationsd", "keys": "pred", "softmax": True},
                {"_target_": "AsDiscreted", "keys": "pred", "argmax": True},
                {"_target_": "SaveImaged", "keys": "pred", "output_dir": "@output_dir"},
            ],
        },
        "handlers": [
            {
                "_target_": "CheckpointLoader",
                "load_path": "$@bundle_root + '/models/model.pt'",
                "load_dict": {"model": "@network"},
            }
        ],
        "evaluator": {
            "_target_": "SupervisedEvaluator",
            "device": "@device",
            "val_data_loader": "@dataloader",
            "network": "@network",
            "inferer": "@inferer",
            "val_handlers": "@handlers",
        },
        "run": ["$@evaluator.run()"],
    }


def write_bundle(
    root: Path,
    *,
    network_def: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    files: dict[str, str] | None = None,
    weights: bool = True,
    seed: int = 0,
) -> Path:
    """A bundle folder; weights come from a UNet built from `network_def` with `seed`."""
    import torch
    from monai.networks.nets import UNet

    network_def = dict(TINY_UNET if network_def is None else network_def)
    (root / "configs").mkdir(parents=True)
    (root / "models").mkdir()
    content = zoo_inference_config(network_def) if config is None else config
    (root / "configs" / "inference.json").write_text(json.dumps(content, indent=2))
    (root / "configs" / "metadata.json").write_text(json.dumps({**METADATA, **(metadata or {})}))
    for relative, text in (files or {}).items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    if weights:
        torch.manual_seed(seed)
        kwargs = {k: v for k, v in TINY_UNET.items() if k != "_target_"}
        torch.save(UNet(**kwargs).state_dict(), root / "models" / "model.pt")
    return root


@pytest.fixture
def make_bundle(tmp_path: Path):
    def make(name: str = "bundle", **kwargs: Any) -> Path:
        return write_bundle(tmp_path / name, **kwargs)

    return make


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"
