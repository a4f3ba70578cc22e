"""`workstation train`'s host side: a trainable analysis gets its series, writes checkpoints,
metrics and sample grids atomically, and a refusal, crash or cancel never loses the last
complete checkpoint."""

from __future__ import annotations

import importlib
import json
import pickle
import struct
import sys
import textwrap
import uuid
import zlib

import numpy as np
import pytest

from workstation.cli import main
from workstation.core.volume import Volume
from workstation.plugins.declarations import AnalysisSpec, DeclarationError
from workstation.plugins.manager import load_registry
from workstation.plugins.training import (
    CLI_HINTS,
    REFUSED_CHECKPOINT_EXISTS,
    REFUSED_EPOCHS,
    REFUSED_INPUT,
    REFUSED_NO_CHECKPOINT,
    REFUSED_NO_SERIES,
    NotTrainable,
    TrainingRefused,
    atomic_write,
    png_bytes,
    read_metrics,
    sample_grid,
    train,
    train_analysis,
)

TOY_PLUGIN = """
import numpy as np

from workstation.plugins.api import AnalysisSpec, TrainingRefused, hookimpl

WORKSTATION_PLUGIN_API = "1.0"
CRASH_AT = 0
CANCEL_AT = 0


@hookimpl
def workstation_analyses():
    return [
        AnalysisSpec(id="toy.model", title="Toy", version="0.1", entry=f"{__name__}:run",
                     train_entry=f"{__name__}:train", returns=["report"]),
        AnalysisSpec(id="toy.fixed", title="Fixed", version="0.1", entry=f"{__name__}:run"),
    ]


def run(ctx):
    raise NotImplementedError


def train(ctx):
    if len(ctx.volumes) < 2:
        raise TrainingRefused(f"toy.model needs two series, got {len(ctx.volumes)}")
    if ctx.epochs > 50:
        raise TrainingRefused("toy.model trains 50 epochs at most", "epochs")
    state = ctx.load_checkpoint() if ctx.resume else None
    start, weight = (state["epoch"], state["weight"]) if state else (0, 0.0)
    for epoch in range(start + 1, ctx.epochs + 1):
        ctx.check_cancelled()
        if epoch == CRASH_AT:
            raise RuntimeError("the disk caught fire")
        weight += float(np.mean([v.array.mean() for v in ctx.volumes])) + ctx.seed
        ctx.save_checkpoint({"weight": weight}, epoch)
        ctx.log_epoch(epoch, {"generator_loss": 1.0 / epoch, "discriminator_loss": 0.5})
        ctx.save_samples(np.stack([v.array[0] for v in ctx.volumes]), (0.0, 4.0))
        ctx.progress(epoch / ctx.epochs, f"epoch {epoch}")
        if epoch == CANCEL_AT:
            ctx.cancel_flag.set()
"""


@pytest.fixture
def toy(tmp_path, monkeypatch):
    name = f"toy_trainable_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(TOY_PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(name)
    yield module
    sys.modules.pop(name, None)


def volumes(n=2):
    return [Volume(np.full((3, 4, 5), k + 1.0, np.float32)) for k in range(n)]


def test_training_writes_checkpoint_metrics_samples_and_run_facts(toy, tmp_path):
    model_dir = tmp_path / "model"
    registry = load_registry([toy])
    progress = []
    outcome = train(
        registry,
        "toy.model",
        volumes(),
        model_dir,
        epochs=3,
        seed=1,
        on_progress=lambda f, m: progress.append(f),
    )
    assert outcome.ok and outcome.epochs_done == 3, outcome.error
    import torch

    state = torch.load(model_dir / "checkpoint.pt", weights_only=True)
    assert state == {"weight": pytest.approx(3 * (1.5 + 1)), "epoch": 3}
    metrics = read_metrics(model_dir)
    assert [row["epoch"] for row in metrics] == [1, 2, 3]
    assert metrics[1]["generator_loss"] == 0.5 and "discriminator_loss" in metrics[1]
    assert progress[-1] == 1.0
    png = (model_dir / "samples.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (2 + 2 * (5 + 2), 2 + 1 * (4 + 2))  # 2 images side by side
    assert not list(model_dir.glob("*.part"))


def test_png_pixels_round_trip():
    grid = sample_grid(np.array([[[0.0, 1.0], [2.0, 4.0]]]), (0.0, 4.0))
    png = png_bytes(grid)
    length = struct.unpack(">I", png[33:37])[0]
    raw = zlib.decompress(png[41 : 41 + length])
    rows = [raw[i * 7 + 1 : (i + 1) * 7] for i in range(6)]  # filter byte + 6 pixels per row
    assert list(rows[2][2:4]) == [0, 64] and list(rows[3][2:4]) == [128, 255]


def test_a_crash_keeps_the_last_checkpoint_and_resume_finishes_the_same(toy, tmp_path):
    registry = load_registry([toy])
    toy.CRASH_AT = 3
    crashed = train(registry, "toy.model", volumes(), tmp_path / "a", epochs=4)
    assert crashed.outcome == "failed" and "the disk caught fire" in crashed.error
    assert crashed.epochs_done == 2
    toy.CRASH_AT = 0
    resumed = train(registry, "toy.model", volumes(), tmp_path / "a", epochs=4, resume=True)
    straight = train(registry, "toy.model", volumes(), tmp_path / "b", epochs=4)
    assert resumed.ok and straight.ok
    import torch

    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert a == b
    assert [row["epoch"] for row in read_metrics(tmp_path / "a")] == [1, 2, 3, 4]


def test_cancel_stops_with_the_last_epoch_kept(toy, tmp_path):
    toy.CANCEL_AT = 2
    outcome = train(load_registry([toy]), "toy.model", volumes(), tmp_path, epochs=5)
    assert outcome.outcome == "cancelled" and outcome.epochs_done == 2
    assert (tmp_path / "checkpoint.pt").is_file()


def test_an_interrupted_write_leaves_the_previous_file(tmp_path):
    target = tmp_path / "checkpoint.pt"
    target.write_bytes(b"epoch 4")

    def half_then_fail(handle):
        handle.write(b"epo")
        raise OSError("no space left on device")

    with pytest.raises(OSError, match="no space"):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"epoch 4"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_refusals_come_before_any_work(toy, tmp_path):
    registry = load_registry([toy])
    refused = train(registry, "toy.model", volumes(1), tmp_path / "m", epochs=2)
    assert refused.outcome == "refused" and refused.reason == REFUSED_INPUT
    assert refused.error == "toy.model needs two series, got 1"
    assert not (tmp_path / "m").exists()  # a refused request leaves nothing behind

    assert train(registry, "toy.model", volumes(), tmp_path / "m", epochs=1).ok
    again = train(registry, "toy.model", volumes(), tmp_path / "m", epochs=2)
    assert again.outcome == "refused" and again.reason == REFUSED_CHECKPOINT_EXISTS
    assert again.error == f"{tmp_path / 'm'} already holds a checkpoint"
    assert "--resume" in again.cli_hint
    fresh = train(registry, "toy.model", volumes(), tmp_path / "new", epochs=2, resume=True)
    assert fresh.outcome == "refused" and fresh.reason == REFUSED_NO_CHECKPOINT
    assert "no checkpoint.pt to resume from" in fresh.error
    none = train(registry, "toy.model", [], tmp_path / "x", epochs=2)
    assert none.outcome == "refused" and none.reason == REFUSED_NO_SERIES
    assert none.error == "no series given to train on" and "--series" in none.cli_hint
    zero = train(registry, "toy.model", volumes(), tmp_path / "x", epochs=0)
    assert zero.reason == REFUSED_EPOCHS and "--epochs" in zero.cli_hint
    for outcome in (refused, again, fresh, none, zero):  # neutral words: no flag, no button
        assert "--" not in outcome.error and "tick" not in outcome.error
    with pytest.raises(NotTrainable, match=r"toy\.fixed cannot be trained"):
        train(registry, "toy.fixed", volumes(), tmp_path / "y")


def test_a_refused_request_leaves_the_model_folder_exactly_as_it_was(toy, tmp_path):
    registry = load_registry([toy])
    model_dir = tmp_path / "model"
    assert train(registry, "toy.model", volumes(), model_dir, epochs=2, seed=5).ok
    before = {p.name: p.read_bytes() for p in model_dir.iterdir()}
    assert json.loads(before["training.json"])["seed"] == 5

    # A resume the plugin refuses (one series) and one asking for too many epochs.
    for vols, epochs in ((volumes(1), 3), (volumes(), 60)):
        refused = train(registry, "toy.model", vols, model_dir, epochs=epochs, resume=True)
        assert refused.outcome == "refused", refused.error
        assert {p.name: p.read_bytes() for p in model_dir.iterdir()} == before

    # A new model refused in an existing folder that holds no checkpoint (yet other files).
    other = tmp_path / "other"
    other.mkdir()
    (other / "training.json").write_text('{"analysis_id": "toy.model", "seed": 9}')
    (other / "notes.txt").write_text("kept")
    kept = {p.name: p.read_bytes() for p in other.iterdir()}
    refused = train(registry, "toy.model", volumes(1), other, epochs=2, seed=1)
    assert refused.outcome == "refused"
    assert {p.name: p.read_bytes() for p in other.iterdir()} == kept

    # A folder (and parents) made for a refused request are not left behind.
    deep = tmp_path / "a" / "b" / "model"
    assert train(registry, "toy.model", volumes(1), deep, epochs=2).outcome == "refused"
    assert not (tmp_path / "a").exists()


def test_a_resumed_model_keeps_what_it_was_first_trained_with(toy, tmp_path):
    registry = load_registry([toy])
    assert train(registry, "toy.model", volumes(), tmp_path, epochs=1, seed=2).ok
    assert train(registry, "toy.model", volumes(3), tmp_path, epochs=2, seed=2, resume=True).ok
    info = json.loads((tmp_path / "training.json").read_text())
    assert info["resume"] is True and info["epochs"] == 2 and len(info["series"]) == 3
    assert [(e["epochs"], len(e["series"]), e["resume"]) for e in info["earlier"]] == [
        (1, 2, False)
    ]


def test_a_plugin_refusal_carries_its_reason_and_hint(toy, tmp_path):
    outcome = train(load_registry([toy]), "toy.model", volumes(), tmp_path / "m", epochs=60)
    assert outcome.outcome == "refused" and outcome.reason == REFUSED_EPOCHS
    assert outcome.error == "toy.model trains 50 epochs at most"
    assert outcome.cli_hint == CLI_HINTS[REFUSED_EPOCHS]
    from workstation.commands.train import cli_message

    assert cli_message(outcome) == (
        f"training toy.model refused: toy.model trains 50 epochs at most; "
        f"{CLI_HINTS[REFUSED_EPOCHS]}"
    )
    refusal = pickle.loads(pickle.dumps(TrainingRefused("too big", "device", "use --device cpu")))
    assert (refusal.message, refusal.reason, refusal.cli_hint) == (
        "too big",
        "device",
        "use --device cpu",
    )
    assert pickle.loads(pickle.dumps(outcome)).reason == REFUSED_EPOCHS


def test_train_analysis_takes_the_spec_alone(toy, tmp_path):
    spec = load_registry([toy]).analysis("toy.model").spec
    outcome = train_analysis(spec, volumes(), tmp_path, epochs=2, seed=1)
    assert outcome.ok and outcome.epochs_done == 2, outcome.error
    with pytest.raises(NotTrainable, match=r"toy\.fixed cannot be trained"):
        train_analysis(load_registry([toy]).analysis("toy.fixed").spec, volumes(), tmp_path)


def test_train_entry_is_declared_like_entry():
    spec = AnalysisSpec(id="a.b", title="A", version="1", entry="m:run", train_entry="m:train")
    assert spec.to_dict()["train_entry"] == "m:train"
    with pytest.raises(DeclarationError, match="train_entry 'not an entry'"):
        AnalysisSpec(id="a.b", title="A", version="1", entry="m:run", train_entry="not an entry")


def test_cli_names_what_is_wrong(capsys, tmp_path):
    assert (
        main(["--store", str(tmp_path), "train", "nobody.knows", "--out", "m", "--series", "1.2"])
        == 2
    )
    assert "nobody.knows" in capsys.readouterr().err
    assert main(["--store", str(tmp_path), "train", "threshold.segment", "--out", "m"]) == 2
    assert "--series UID" in capsys.readouterr().err
    code = main(
        ["--store", str(tmp_path), "train", "threshold.segment", "--out", "m", "--series", "1.2"]
    )
    assert code == 2 and "threshold.segment cannot be trained" in capsys.readouterr().err


def test_a_train_entry_that_cannot_be_imported_leaves_no_empty_model_folder(tmp_path):
    spec = AnalysisSpec(
        id="toy.broken",
        title="Broken",
        version="0.1",
        entry="ws_no_such_trainer_module:run",
        train_entry="ws_no_such_trainer_module:train",
    )
    outcome = train_analysis(spec, volumes(), tmp_path / "models" / "new", epochs=1)
    assert outcome.outcome == "failed" and "ws_no_such_trainer_module" in outcome.error
    assert not (tmp_path / "models").exists()
