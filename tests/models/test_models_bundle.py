"""Loading model-zoo bundles: trust, machine adaptation, clear failures, scripts isolation."""

from __future__ import annotations

import json
import socket
import sys
import types
from pathlib import Path

import pytest
import torch
from monai.networks.nets import UNet

from workstation.cli import main as cli_main
from workstation.models import (
    BundleBuildError,
    BundleError,
    UntrustedModel,
    is_trusted,
    load_bundle,
    load_model,
    trust,
)

UNET_KWARGS = {
    "spatial_dims": 3,
    "in_channels": 1,
    "out_channels": 2,
    "channels": [4, 8],
    "strides": [2],
    "num_res_units": 0,
}


def test_trusted_bundle_builds_network_transforms_and_metadata(make_bundle, store, tmp_path):
    bundle = make_bundle()
    trust(bundle, store)
    loaded = load_bundle(bundle, "cpu", store_dir=store, scratch_dir=tmp_path / "scratch")

    reference = UNet(**UNET_KWARGS)
    reference.load_state_dict(torch.load(bundle / "models" / "model.pt", weights_only=True))
    reference.eval()
    image = torch.randn(1, 1, 16, 16, 16)
    assert not loaded.network.training
    assert next(loaded.network.parameters()).device.type == "cpu"
    with torch.no_grad():
        torch.testing.assert_close(loaded.network(image), reference(image))

    scaled = loaded.preprocessing({"image": torch.tensor([[[[-100.0, 53.5, 500.0]]]])})["image"]
    torch.testing.assert_close(scaled.as_tensor(), torch.tensor([[[[0.0, 0.5, 1.0]]]]))
    assert list(loaded.inferer.roi_size) == [16, 16, 16]
    assert loaded.postprocessing is not None
    assert loaded.metadata.name == "Tiny spleen CT segmentation"
    assert loaded.metadata.version == "0.5.3"
    assert loaded.labels == {0: "background", 1: "spleen"}
    assert loaded.metadata.required_packages_version["pytorch-ignite"] == "0.5.0"


def test_config_is_adapted_to_this_machine(make_bundle, store, tmp_path):
    bundle = make_bundle()
    trust(bundle, store)
    scratch = tmp_path / "scratch"
    loaded = load_bundle(bundle, "cpu", store_dir=store, scratch_dir=scratch)

    assert loaded.get("bundle_root") == str(bundle)
    assert loaded.get("device") == torch.device("cpu")
    assert loaded.get("output_dir") == str(scratch / "output")
    assert loaded.get("dataset_dir") == str(scratch / "dataset")
    assert loaded.parser["dataloader"]["num_workers"] <= 2
    assert not (bundle / "eval").exists()
    assert is_trusted(bundle, store), "loading must not change any file of the bundle"


def test_version_difference_is_a_warning_not_a_refusal(make_bundle, store, tmp_path):
    bundle = make_bundle(metadata={"monai_version": "0.9.1", "pytorch_version": "1.10.2"})
    trust(bundle, store)
    loaded = load_bundle(bundle, "cpu", store_dir=store, scratch_dir=tmp_path / "s")
    text = "\n".join(loaded.warnings)
    assert "tested with MONAI 0.9.1" in text and "tested with PyTorch 1.10.2" in text
    assert loaded.network is not None


def test_unknown_component_gets_one_paragraph_naming_entry_and_versions(make_bundle, store):
    bundle = make_bundle(
        network_def={"_target_": "NoSuchNetwork", "spatial_dims": 3},
        metadata={"monai_version": "0.8.0"},
    )
    trust(bundle, store)
    with pytest.raises(BundleBuildError) as caught:
        load_bundle(bundle, "cpu", store_dir=store)
    message = str(caught.value)
    assert caught.value.entry == "network_def"
    assert "'Tiny spleen CT segmentation'" in message and "NoSuchNetwork" in message
    assert "MONAI 0.8.0" in message and f"MONAI {__import__('monai').__version__}" in message
    assert "Traceback" not in message and "\n" not in message


def test_failing_nested_transform_is_named(make_bundle, store):
    bundle = make_bundle()
    config_path = bundle / "configs" / "inference.json"
    config = json.loads(config_path.read_text())
    config["preprocessing"]["transforms"][1]["no_such_argument"] = 3
    config_path.write_text(json.dumps(config))
    trust(bundle, store)
    with pytest.raises(BundleBuildError) as caught:
        load_bundle(bundle, "cpu", store_dir=store)
    assert caught.value.entry == "preprocessing::transforms::1"
    assert "no_such_argument" in str(caught.value)


def test_missing_weights_names_the_url_and_downloads_nothing(make_bundle, store, monkeypatch):
    url = "https://example.invalid/spleen/model.pt"
    bundle = make_bundle(
        weights=False,
        files={
            "large_files.yml": (
                'large_files:\n  - path: "models/model.pt"\n    url: "' + url + '"\n'
                '    hash_val: ""\n    hash_type: ""\n'
            )
        },
    )
    trust(bundle, store)

    def no_network(*args, **kwargs):
        raise AssertionError("the loader tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(BundleError) as caught:
        load_bundle(bundle, "cpu", store_dir=store)
    assert "models/model.pt is missing" in str(caught.value) and url in str(caught.value)
    assert not (bundle / "models" / "model.pt").exists()


SCRIPT = """
import torch

MARKER = "{marker}"


class MarkedNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(1, 2, 1)

    def forward(self, x):
        return self.conv(x)
"""


def _scripts_bundle(make_bundle, name: str, marker: str) -> Path:
    bundle = make_bundle(
        name,
        network_def={"_target_": "scripts.nets.MarkedNet"},
        files={
            "scripts/__init__.py": "from . import nets\n",
            "scripts/nets.py": SCRIPT.format(marker=marker),
        },
        weights=False,
    )
    config_path = bundle / "configs" / "inference.json"
    config = json.loads(config_path.read_text())
    config["imports"].append("$import scripts")
    config["marker"] = "$scripts.nets.MARKER"
    config_path.write_text(json.dumps(config))
    torch.save(
        {
            "conv.weight": torch.full((2, 1, 1, 1, 1), 1.0 if marker == "a" else 2.0),
            "conv.bias": torch.zeros(2),
        },
        bundle / "models" / "model.pt",
    )
    return bundle


def test_two_bundles_with_scripts_packages_each_get_their_own(make_bundle, store, monkeypatch):
    outside = types.ModuleType("scripts")
    monkeypatch.setitem(sys.modules, "scripts", outside)
    first = _scripts_bundle(make_bundle, "first", "a")
    second = _scripts_bundle(make_bundle, "second", "b")
    trust(first, store)
    trust(second, store)

    loaded_first = load_bundle(first, "cpu", store_dir=store)
    loaded_second = load_bundle(second, "cpu", store_dir=store)

    assert loaded_first.get("marker") == "a"
    assert loaded_second.get("marker") == "b"
    assert type(loaded_first.network).forward.__code__.co_filename.startswith(str(first))
    assert type(loaded_second.network).forward.__code__.co_filename.startswith(str(second))
    ones = torch.ones(1, 1, 2, 2, 2)
    assert loaded_first.network(ones).mean().item() == pytest.approx(1.0)
    assert loaded_second.network(ones).mean().item() == pytest.approx(2.0)
    assert sys.modules["scripts"] is outside, "the host's own 'scripts' module is restored"
    assert str(first) not in sys.path and str(second) not in sys.path
    assert not list(first.rglob("__pycache__")), "loading writes no bytecode into the bundle"
    assert is_trusted(first, store) and is_trusted(second, store)


def _untrusted_code_bundle(make_bundle, target: Path) -> Path:
    bundle = make_bundle("suspicious")
    config_path = bundle / "configs" / "inference.json"
    config = json.loads(config_path.read_text())
    config["side_effect"] = f"$open({str(target)!r}, 'w').write('pwned') * 0 + 2"
    config["network_def"]["out_channels"] = "@side_effect"
    config_path.write_text(json.dumps(config))
    return bundle


def test_untrusted_bundle_runs_nothing_until_trusted(make_bundle, tmp_path, capsys):
    target = tmp_path / "pwned.txt"
    bundle = _untrusted_code_bundle(make_bundle, target)

    with pytest.raises(UntrustedModel) as caught:
        load_bundle(bundle, "cpu")
    message = str(caught.value)
    assert f"workstation models trust {bundle}" in message
    assert "$import os" in message and "$open(" in message
    assert "configs/inference.json#side_effect" in message
    assert not target.exists()

    assert cli_main(["models", "ls"]) == 0
    assert cli_main(["models", "ls", "--json"]) == 0
    assert cli_main(["models", "review", str(bundle)]) == 0
    assert not target.exists()

    assert cli_main(["models", "trust", str(bundle)]) == 0
    assert "$open(" in capsys.readouterr().out
    assert not target.exists(), "trusting reads the bundle; it does not run it"

    loaded = load_bundle(bundle, "cpu")
    assert target.read_text() == "pwned"
    assert loaded.network is not None


def test_changed_file_voids_trust_and_names_the_file(make_bundle, store):
    bundle = make_bundle()
    trust(bundle, store)
    config_path = bundle / "configs" / "inference.json"
    config_path.write_text(config_path.read_text().replace("glob", "glob ", 1))
    with pytest.raises(UntrustedModel) as caught:
        load_bundle(bundle, "cpu", store_dir=store)
    assert "configs/inference.json changed" in str(caught.value)
    assert f"--store {store} models trust {bundle}" in str(caught.value)


def test_network_entry_without_network_def(make_bundle, store):
    config = {"network": dict(UNET_KWARGS, _target_="UNet"), "device": "cuda:0"}
    bundle = make_bundle(config=config)
    trust(bundle, store)
    loaded = load_bundle(bundle, "cpu", store_dir=store)
    assert loaded.inferer is None and loaded.preprocessing is None
    assert loaded.get("device") == torch.device("cpu")
    assert not any("MONAI" in warning for warning in loaded.warnings)


def test_folder_without_configs_is_explained(tmp_path, store):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match=r"no configs/inference\.json"):
        load_bundle(tmp_path / "empty", "cpu", store_dir=store)


def test_load_model_takes_a_bundle_or_a_checkpoint(make_bundle, store, tmp_path):
    bundle = make_bundle()
    with pytest.raises(UntrustedModel):
        load_model(bundle, "cpu", store_dir=store)
    trust(bundle, store)
    assert load_model(bundle, "cpu", store_dir=store).labels == {0: "background", 1: "spleen"}

    checkpoint = bundle / "models" / "model.pt"
    from_file = load_model(checkpoint, "cpu", network=UNet(**UNET_KWARGS), store_dir=store)
    expected = torch.load(checkpoint, weights_only=True)
    for name, value in from_file.network.state_dict().items():
        torch.testing.assert_close(value, expected[name])
    assert from_file.metadata.name == "model.pt" and from_file.preprocessing is None
    with pytest.raises(BundleError, match="holds weights only"):
        load_model(checkpoint, "cpu", store_dir=store)


def test_bundle_shipped_in_a_plugin_package_can_skip_the_trust_check(make_bundle, store):
    bundle = make_bundle()
    loaded = load_bundle(bundle, "cpu", trusted_check=False, store_dir=store)
    assert not loaded.network.training
