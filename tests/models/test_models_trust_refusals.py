"""`workstation models trust` records only what trust is for: a bundle folder, or a checkpoint
holding pickled objects. An empty folder, a plain state_dict and an unreadable file are refused
with a message naming the path and what it is, and nothing is recorded."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from workstation.cli import main as cli_main
from workstation.models import list_trusted


def trust_cli(store, path, capsys) -> tuple[int, str]:
    code = cli_main(["--store", str(store), "models", "trust", str(path)])
    return code, capsys.readouterr().err


def test_an_empty_folder_is_not_a_bundle(tmp_path, store, capsys):
    folder = tmp_path / "emptydir"
    folder.mkdir()
    code, err = trust_cli(store, folder, capsys)
    assert code != 0
    assert f"{folder}: not a MONAI bundle: there is no configs/ folder" in err
    assert list_trusted(store) == []


def test_a_configs_folder_without_configs_is_not_a_bundle(tmp_path, store, capsys):
    folder = tmp_path / "half"
    (folder / "configs").mkdir(parents=True)
    (folder / "configs" / "notes.txt").write_text("no config here")
    code, err = trust_cli(store, folder, capsys)
    assert code != 0 and "configs/ holds no .json or .yaml config" in err
    assert list_trusted(store) == []


def test_a_plain_state_dict_needs_no_trust(tmp_path, store, capsys):
    checkpoint = tmp_path / "weights.pt"
    torch.save({"conv.weight": torch.zeros(2, 1, 3, 3), "epoch": 3}, checkpoint)
    code, err = trust_cli(store, checkpoint, capsys)
    assert code != 0
    assert f"{checkpoint}: holds only weights" in err and "needs no trust" in err
    assert list_trusted(store) == []


@pytest.mark.parametrize("damage", ["truncated", "not_a_checkpoint"])
def test_an_unreadable_file_cannot_be_trusted(tmp_path, store, capsys, damage):
    good = tmp_path / "good.pt"
    torch.save({"weight": torch.zeros(64, 64)}, good)
    broken = tmp_path / f"{damage}.pt"
    if damage == "truncated":
        broken.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    else:
        broken.write_text("these are release notes, not weights\n")
    code, err = trust_cli(store, broken, capsys)
    assert code != 0
    assert f"{broken}: cannot be read as a PyTorch checkpoint" in err
    assert list_trusted(store) == []


def test_a_checkpoint_holding_pickled_objects_is_trusted(tmp_path, store, capsys):
    checkpoint = tmp_path / "pickled.pt"
    torch.save({"state_dict": {}, "mean": np.float64(0.5)}, checkpoint, pickle_protocol=2)
    with pytest.raises(pickle.UnpicklingError):  # what makes it need trust
        torch.load(checkpoint, weights_only=True)
    code, _ = trust_cli(store, checkpoint, capsys)
    assert code == 0
    assert [status.kind for status in list_trusted(store)] == ["checkpoint"]
