"""`workstation evaluate` says what it evaluated (weights, demo mark, parameters used, versions)
and refuses, once and before any case runs, what would be refused for every case."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

import workstation.plugins.manager as plugin_manager
from workstation.cli import main
from workstation.core.volume import Volume
from workstation.evaluation import evaluate

SHAPE = (6, 12, 12)


def write_nifti(array: np.ndarray, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(Volume(array, spacing=(1.0, 1.0, 1.0)).to_nifti(), str(path))
    return str(path.relative_to(path.parent.parent))


def organ_datalist(root: Path, count: int = 2) -> Path:
    """Cases whose image is 1 inside a box and 0 outside, with the box as the organ label."""
    entries = []
    for i in range(count):
        image = np.zeros(SHAPE, np.float32)
        image[1:5, 3 : 8 + i, 3:8] = 1.0
        label = (image > 0.5).astype(np.uint8)
        entries.append(
            {
                "image": write_nifti(image, root / "images" / f"case{i}.nii.gz"),
                "label": write_nifti(label, root / "labels" / f"case{i}.nii.gz"),
            }
        )
    datalist = root / "datalist.json"
    datalist.write_text(json.dumps({"testing": entries}))
    return datalist


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def cli_registry(fake_segmenter, monkeypatch: pytest.MonkeyPatch):
    """`workstation evaluate` on the command line sees the fake segmenter."""
    monkeypatch.setattr(plugin_manager, "load_registry", lambda *a, **k: fake_segmenter.registry)
    return fake_segmenter


def test_demo_weights_mark_the_csv_the_summary_and_the_plot(tmp_path, fake_segmenter):
    out = tmp_path / "eval"
    summary = evaluate(
        "fake.segment",
        organ_datalist(tmp_path / "data"),
        out,
        params={"level": "0.25"},
        seed=3,
        registry=fake_segmenter.registry,
    )
    assert summary.ok and summary.demo_weights
    shipped = fake_segmenter.folder / "weights.bin"
    assert fake_segmenter.calls() == [str(shipped)] * 2
    rows = read_rows(out / "cases.csv")
    assert [row["demo_weights"] for row in rows] == ["yes", "yes"]
    written = json.loads((out / "summary.json").read_text())
    assert written["demo_weights"] is True
    assert "DEMO WEIGHTS" in written["notice"]
    assert written["weights"]["path"] == str(shipped)
    assert written["weights"]["sha256"] == hashlib.sha256(shipped.read_bytes()).hexdigest()
    # the values used, with the defaults, not only what was typed
    assert written["parameters"] == {"level": 0.25, "smooth": False}
    assert written["parameters_given"] == {"level": "0.25"}
    assert written["seed"] == 3 and written["device"] == "cpu"
    assert written["analysis_version"] == "2.5"
    assert written["versions"]["workstation"] and written["versions"]["plugin_api"]
    assert written["plugin"]["name"]
    title = Image.open(out / "dice_boxplot.png").text["Title"]
    assert "fake.segment" in title and "DEMO WEIGHTS" in title


def test_user_weights_reach_every_case_and_are_recorded(tmp_path, cli_registry, capsys):
    weights = tmp_path / "mine.pt"
    weights.write_bytes(b"my own weights")
    out = tmp_path / "eval"
    args = ["evaluate", "fake.segment", "--dataset", str(organ_datalist(tmp_path / "data"))]
    code = main([*args, "--out", str(out), "--weights", str(weights)])
    assert code == 0, capsys.readouterr().err
    assert cli_registry.calls() == [str(weights)] * 2
    rows = read_rows(out / "cases.csv")
    assert "demo_weights" not in rows[0]
    written = json.loads((out / "summary.json").read_text())
    assert written["demo_weights"] is False
    assert written["weights"] == {
        "path": str(weights),
        "sha256": hashlib.sha256(b"my own weights").hexdigest(),
        "demo": False,
        "given": True,
    }
    assert "DEMO" not in Image.open(out / "dice_boxplot.png").text["Title"]


@pytest.mark.parametrize(
    ("name", "message"),
    [("untrusted.pt", "is not trusted"), ("truncated.pt", "not a readable PyTorch checkpoint")],
)
def test_weights_that_cannot_be_used_stop_at_the_first_case_and_nothing_is_written(
    tmp_path, cli_registry, capsys, name, message
):
    weights = tmp_path / name
    weights.write_bytes(b"pickled things")
    out = tmp_path / "eval"
    datalist = organ_datalist(tmp_path / "data", count=3)
    args = ["evaluate", "fake.segment", "--dataset", str(datalist), "--out", str(out)]
    code = main([*args, "--weights", str(weights)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count(message) == 1
    assert "would be for every case" in err
    assert len(cli_registry.calls()) == 1  # stopped after the first case
    assert not (out / "cases.csv").exists()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--device", "cuda"], "runs on the CPU only; --device cuda cannot be used"),
        (["--param", "levle=2"], "did you mean 'level'?"),
        (["--weights", "/nonexistent/model.pt"], "weights /nonexistent/model.pt: no such file"),
    ],
)
def test_settings_refused_for_every_case_are_refused_once_before_any_run(
    tmp_path, cli_registry, capsys, option, message
):
    datalist = organ_datalist(tmp_path / "data", count=3)
    code = main(["evaluate", "fake.segment", "--dataset", str(datalist), *option])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count(message) == 1
    assert "[1/3]" not in err
    assert cli_registry.calls() == []


def test_missing_label_file_is_named_before_any_case_runs(tmp_path, cli_registry, capsys):
    datalist = organ_datalist(tmp_path / "data", count=3)
    missing = tmp_path / "data" / "labels" / "case2.nii.gz"
    missing.unlink()
    code = main(["evaluate", "fake.segment", "--dataset", str(datalist)])
    assert code == 2
    err = capsys.readouterr().err
    assert f"case 3 (case2): label {missing}: no such file" in err
    assert cli_registry.calls() == []
