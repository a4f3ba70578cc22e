"""Training the GAN on chosen series: `workstation train` end to end on indexed DICOM, resume
matching an uninterrupted run, cancel keeping the last epoch, and bad input refused first."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from workstation_monai_gan.model import load_model

from workstation.cli import main
from workstation.plugins.api import Volume
from workstation.plugins.manager import load_registry
from workstation.plugins.training import read_metrics, train
from workstation.testing.phantoms import ct_phantom, write_volume_series

SPACING = (5.4, 5.4, 5.0)


def small_ct(seed: int, slices: int = 20, size: int = 64) -> Volume:
    hu, _ = ct_phantom((slices, size, size), SPACING, seed=seed)
    return Volume(hu, spacing=SPACING, metadata={"modality": "CT"})


@pytest.fixture
def registry():
    return load_registry()


def test_train_command_on_indexed_series_then_resume_and_generate(
    workstation_store, tmp_path, capsys, registry
):
    from workstation.dicom.index import index_paths

    uids = []
    for seed in (1, 2):
        folder = tmp_path / f"ct{seed}"
        volume = small_ct(seed)
        write_volume_series(folder, volume.array, spacing=SPACING, series_uid=f"1.2.826.0.{seed}")
        index_paths(workstation_store, [folder])
        uids.append(f"1.2.826.0.{seed}")
    model = tmp_path / "model"
    base = ["--store", str(workstation_store), "train", "gan.generate", "--series", *uids]
    assert main([*base, "--out", str(model), "--epochs", "1", "--seed", "3"]) == 0
    for name in ("checkpoint.pt", "model.pt", "metrics.json", "samples.png", "training.json"):
        assert (model / name).is_file(), name
    assert main([*base, "--out", str(model), "--epochs", "2", "--seed", "3"]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert main([*base, "--out", str(model), "--epochs", "2", "--seed", "3", "--resume"]) == 0
    rows = read_metrics(model)
    assert [r["epoch"] for r in rows] == [1, 2]
    # Resuming a model already at the epochs asked for is refused, and the folder is untouched.
    kept = {p.name: p.read_bytes() for p in model.iterdir()}
    capsys.readouterr()
    assert main([*base, "--out", str(model), "--epochs", "2", "--seed", "3", "--resume"]) == 2
    said = capsys.readouterr().err
    assert "is already at epoch 2; ask for more than 2 epochs in total" in said
    assert "--epochs is the total" in said
    assert {p.name: p.read_bytes() for p in model.iterdir()} == kept
    assert {"generator_loss", "discriminator_loss"} <= rows[0].keys()

    straight = train(
        registry,
        "gan.generate",
        [small_ct(1), small_ct(2)],
        tmp_path / "straight",
        epochs=2,
        seed=3,
        device="cpu",
    )
    assert straight.ok, straight.error
    resumed = torch.load(model / "model.pt", weights_only=True)["generator"]
    uninterrupted = torch.load(tmp_path / "straight" / "model.pt", weights_only=True)["generator"]
    for name, tensor in uninterrupted.items():
        torch.testing.assert_close(resumed[name], tensor, msg=name)

    _generator, config = load_model(model / "model.pt")
    assert config["modality"] == "CT" and config["pixel_spacing"] == pytest.approx([5.4, 5.4])
    assert config["epochs"] == 2


def test_cancel_keeps_the_last_complete_epoch(registry, tmp_path):
    cancel = threading.Event()

    def on_log(level, message):
        if message.startswith("epoch 1:"):
            cancel.set()

    outcome = train(
        registry,
        "gan.generate",
        [small_ct(4, slices=40)],
        tmp_path,
        epochs=5,
        device="cpu",
        on_log=on_log,
        cancel=cancel,
    )
    assert outcome.outcome == "cancelled" and outcome.epochs_done == 1
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 1
    load_model(tmp_path / "model.pt")  # the epoch-1 model is whole


@pytest.mark.parametrize(
    ("series", "epochs", "message"),
    [
        (lambda: [small_ct(1, slices=10)], 2, "only 10 slices"),
        (
            lambda: [small_ct(1), Volume(np.zeros((20, 64, 64)), metadata={"modality": "MR"})],
            2,
            "the series mix modalities (CT: volume 1; MR: volume 2)",
        ),
        (lambda: [small_ct(1), small_ct(2, size=96)], 2, "the series mix slice sizes"),
        (lambda: [small_ct(1, slices=40)], 5000, "too much to train on the CPU (no GPU here"),
        (lambda: [small_ct(1, slices=40, size=16)], 2, "16x16 pixels are too small"),
    ],
)
def test_bad_input_is_refused_before_work(registry, tmp_path, series, epochs, message):
    outcome = train(registry, "gan.generate", series(), tmp_path, epochs=epochs, device="cpu")
    assert outcome.outcome == "refused", outcome.error
    assert message in outcome.error
    assert not (tmp_path / "checkpoint.pt").exists()
