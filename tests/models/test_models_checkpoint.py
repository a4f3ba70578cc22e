"""Checkpoint files of every common shape load into the network; bad ones name the problem."""

from __future__ import annotations

import argparse

import pytest
import torch
from monai.networks.nets import UNet

from workstation.models import CheckpointError, load_checkpoint, trust


def tiny_unet(out_channels: int = 2, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return UNet(3, 1, out_channels, channels=(4, 8), strides=(2,), num_res_units=0)


def assert_same_weights(network: torch.nn.Module, reference: torch.nn.Module) -> None:
    for (name, value), (_, expected) in zip(
        network.state_dict().items(), reference.state_dict().items()
    ):
        torch.testing.assert_close(value, expected, msg=name)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: sd,
        lambda sd: {"state_dict": sd, "epoch": 3},
        lambda sd: {"model": {f"module.{k}": v for k, v in sd.items()}},
    ],
    ids=["plain", "state_dict-key", "ignite-dataparallel"],
)
def test_state_dict_layouts_load(tmp_path, wrap):
    source = tiny_unet(seed=1)
    path = tmp_path / "model.pt"
    torch.save(wrap(source.state_dict()), path)
    loaded = load_checkpoint(tiny_unet(seed=2), path, "cpu")
    assert_same_weights(loaded, source)
    assert not loaded.training


def test_torchscript_file_loads_as_module_or_into_network(tmp_path):
    source = tiny_unet(seed=1).eval()
    path = tmp_path / "model.ts"
    torch.jit.save(torch.jit.trace(source, torch.zeros(1, 1, 8, 8, 8)), path)
    image = torch.randn(1, 1, 8, 8, 8)
    scripted = load_checkpoint(None, path, "cpu")
    torch.testing.assert_close(scripted(image), source(image))
    assert_same_weights(load_checkpoint(tiny_unet(seed=2), path, "cpu"), source)


def test_shape_mismatch_names_the_layer_and_file(tmp_path):
    path = tmp_path / "three-class.pt"
    torch.save(tiny_unet(out_channels=3).state_dict(), path)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(tiny_unet(out_channels=2), path, "cpu")
    message = str(caught.value)
    assert str(path) in message and "shape mismatch in layer" in message
    assert "model.2.conv.weight: checkpoint (12, 3, 3, 3, 3) vs network (12, 2, 3, 3, 3)" in message
    assert "model.2.conv.bias: checkpoint (3,) vs network (2,)" in message


def test_missing_layers_are_named(tmp_path):
    state = tiny_unet().state_dict()
    dropped = next(iter(state))
    del state[dropped]
    path = tmp_path / "partial.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=f"missing from the checkpoint: {dropped}"):
        load_checkpoint(tiny_unet(), path, "cpu")


def test_pickled_objects_need_trust(tmp_path, monkeypatch):
    store = tmp_path / "store"
    monkeypatch.setenv("WORKSTATION_HOME", str(store))
    source = tiny_unet(seed=1)
    path = tmp_path / "with-objects.pt"
    torch.save({"state_dict": source.state_dict(), "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(CheckpointError, match="workstation models trust"):
        load_checkpoint(tiny_unet(seed=2), path, "cpu")
    trust(path)
    assert_same_weights(load_checkpoint(tiny_unet(seed=2), path, "cpu"), source)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(tiny_unet(), path, "cpu")
    with pytest.raises(CheckpointError, match="checkpoint file not found"):
        load_checkpoint(tiny_unet(), tmp_path / "absent.pt", "cpu")


def test_checkpoint_config_over_defaults_and_demo_detection(tmp_path):
    import torch

    from workstation.models import CONFIG_KEY, is_demo_weights, read_checkpoint_config

    defaults = {"spacing": 2.0, "labels": ["organ"]}
    user = tmp_path / "user.pt"
    torch.save({"state_dict": {}, CONFIG_KEY: {"spacing": 1.5}}, user)
    demo = tmp_path / "demo.pt"
    torch.save({"state_dict": {}, CONFIG_KEY: {"demo": True}}, demo)
    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.zeros(1)}, plain)

    assert read_checkpoint_config(user, defaults) == {"spacing": 1.5, "labels": ["organ"]}
    assert read_checkpoint_config(plain, defaults) == defaults
    assert read_checkpoint_config(tmp_path / "missing.pt", defaults) == defaults
    shipped = tmp_path / "shipped.pt"
    shipped.write_bytes(plain.read_bytes())
    assert is_demo_weights(demo, read_checkpoint_config(demo, defaults), shipped)
    assert is_demo_weights(shipped, defaults, shipped)  # the file the plugin ships
    assert not is_demo_weights(user, read_checkpoint_config(user, defaults), shipped)
