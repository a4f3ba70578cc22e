"""`workstation plugins`, `plugins check`, `run` and `runs` as a user and a CI pipeline see them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from workstation.cli import main

ROOT = Path(__file__).resolve().parents[2]

READER = """
import numpy as np
from workstation.plugins.api import ReaderSpec, Volume, hookimpl

WORKSTATION_PLUGIN_API = "1.0"


@hookimpl
def workstation_readers():
    return [ReaderSpec(id="test.npy", title="NumPy array", extensions=[".npy"],
                       entry=__name__ + ":read")]


def read(path):
    return Volume(np.load(path), spacing=(0.5, 0.5, 3.0), origin=(1.0, 2.0, 3.0))
"""


@dataclass
class WrittenFile:
    path: Path
    kind: str


@pytest.fixture
def installed(fake_distribution, sample_plugin_source):
    """The sample analyses and a .npy reader, installed as an entry-point distribution."""
    fake_distribution(
        "workstation-sample",
        "1.2.3",
        {"ws_cli_sample": sample_plugin_source, "ws_cli_reader": READER},
        {"sample": "ws_cli_sample", "npy-reader": "ws_cli_reader"},
    )


@pytest.fixture
def writer(monkeypatch):
    """A stand-in for workstation.outputs.write_results that writes one file per result, a
    DICOM-looking one for label maps, and records what the runner handed it."""
    calls = []

    def write_results(results, out_dir, run_info):
        calls.append((results, Path(out_dir), run_info))
        files = []
        for result in results:
            path = (
                Path(out_dir) / f"{result.name}.{'dcm' if result.kind == 'label_map' else 'json'}"
            )
            path.write_bytes(b"\0" * 128 + b"DICM" if result.kind == "label_map" else b"{}")
            files.append(WrittenFile(path, result.kind))
        return files

    module = types.ModuleType("workstation.outputs")
    module.write_results = write_results
    monkeypatch.setitem(sys.modules, "workstation.outputs", module)
    indexed = []
    import workstation.dicom.index as index

    monkeypatch.setattr(
        index, "index_paths", lambda store, paths, **kw: indexed.append((store, paths))
    )
    return calls, indexed


@pytest.fixture
def npy_input(tmp_path):
    array = np.arange(4 * 6 * 5, dtype=np.int16).reshape(4, 6, 5) - 40
    path = tmp_path / "ct.npy"
    np.save(path, array)
    return path, array


def test_run_writes_outputs_records_and_indexes(
    installed, writer, npy_input, tmp_path, capsys
) -> None:
    calls, indexed = writer
    path, array = npy_input
    store, out = tmp_path / "store", tmp_path / "out"
    code = main(
        [
            "--store",
            str(store),
            "run",
            "sample.threshold",
            "--input",
            str(path),
            "--out",
            str(out),
            "--param",
            "lower=10",
            "--param",
            "label=lesion",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "[ 25%] thresholding" in captured.err and "info: lower=10.0" in captured.err
    assert f"wrote {out / 'mask.dcm'}" in captured.out
    results, out_dir, run_info = calls[0]
    assert out_dir == out
    np.testing.assert_array_equal(results[0].volume.array, (array > 10).astype(np.uint8))
    assert results[0].volume.origin == (1.0, 2.0, 3.0)
    assert run_info["analysis"] == {
        "id": "sample.threshold",
        "title": "sample.threshold",
        "version": "1.2.3",
        "plugin": "sample",
        "distribution": "workstation-sample",
        "distribution_version": "1.2.3",
    }
    assert run_info["parameters"] == {"lower": 10.0, "label": "lesion"}
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["outputs"][0]["path"] == str(out / "mask.dcm")
    assert indexed == [(store, [out / "mask.dcm"])]

    assert main(["--store", str(store), "runs", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert runs[0]["analysis_id"] == "sample.threshold" and runs[0]["outcome"] == "succeeded"
    assert runs[0]["inputs"]["path"] == str(path)
    assert [o["path"] for o in runs[0]["outputs"]] == [
        str(out / "mask.dcm"),
        str(out / "count.json"),
    ]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["sample.raises"],
            1,
            "sample.raises failed: ValueError: the model could not read channel 3",
        ),
        (["sample.treshold"], 2, "did you mean 'sample.threshold'"),
        (["sample.threshold", "--param", "lower=abc"], 2, "'lower': 'abc' is not a valid float"),
        (["sample.threshold", "--param", "lower"], 2, "expected NAME=VALUE"),
        (["sample.threshold", "--device", "cuda"], 2, "runs on the CPU only"),
        (["sample.hangs", "--isolated", "--timeout", "0.5"], 124, "timed out after 0.5 s"),
        (["sample.aborts", "--isolated"], 1, "worker died (signal 6"),
    ],
)
def test_run_failures_exit_non_zero_with_the_reason(
    installed, writer, npy_input, tmp_path, capsys, args, code, message
) -> None:
    argv = ["--store", str(tmp_path / "s"), "run", *args, "--input", str(npy_input[0])]
    assert main([*argv, "--out", str(tmp_path / "o")]) == code
    assert message in capsys.readouterr().err


def test_run_names_an_unreadable_input(installed, tmp_path, capsys) -> None:
    other = tmp_path / "scan.xyz"
    other.write_text("x")
    argv = ["run", "sample.threshold", "--out", str(tmp_path / "o")]
    assert main([*argv, "--input", str(other)]) == 2
    err = capsys.readouterr().err
    assert str(other) in err and "no reader" in err and ".npy" in err
    assert main([*argv, "--input", str(tmp_path / "missing.npy")]) == 2
    assert "missing.npy: no such file or folder" in capsys.readouterr().err


def test_run_refuses_a_patient_the_records_store_does_not_know(installed, tmp_path, capsys) -> None:
    argv = ["--store", str(tmp_path / "s"), "run", "sample.records", "--out", str(tmp_path / "o")]
    assert main([*argv, "--patient", "MRN-NOBODY"]) == 2
    err = capsys.readouterr().err
    assert "patient MRN-NOBODY" in err and "workstation records ls" in err
    assert not (tmp_path / "o").exists()


def test_plugins_listing_text_and_json(installed, fake_distribution, capsys) -> None:
    fake_distribution(
        "workstation-broken",
        "0.1",
        {"ws_cli_broken": "raise ImportError('needs libfoo')\n"},
        {"broken-one": "ws_cli_broken"},
    )
    assert main(["plugins"]) == 0
    text = capsys.readouterr().out
    assert "sample.threshold  1.2.3  [ok]" in text and "(workstation-sample 1.2.3)" in text
    assert "--param lower=<float>  default 0.0  range [-1024, 3000]  lowest value" in text
    assert "plugin broken-one (workstation-broken 0.1): broken: ImportError: needs libfoo" in text
    assert main(["plugins", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    by_id = {a["id"]: a for a in listing["analyses"]}
    assert by_id["sample.gpu"]["device"] == "needs_gpu"
    assert by_id["sample.records"]["inputs"] == ["patient_records"]
    broken = next(p for p in listing["plugins"] if p["name"] == "broken-one")
    assert broken["status"] == "broken" and "needs libfoo" in broken["error"]


def write_project(folder: Path, hook_source: str, model_source: str) -> Path:
    (folder / "src" / "ws_check_demo").mkdir(parents=True)
    (folder / "src" / "ws_check_demo" / "__init__.py").write_text("")
    (folder / "src" / "ws_check_demo" / "hooks.py").write_text(textwrap.dedent(hook_source))
    (folder / "src" / "ws_check_demo" / "model.py").write_text(textwrap.dedent(model_source))
    (folder / "pyproject.toml").write_text(
        '[project]\nname = "ws-check-demo"\nversion = "0.1.0"\n'
        '[project.entry-points."workstation.plugins"]\ndemo = "ws_check_demo.hooks"\n'
    )
    return folder


HOOKS = """
{heavy}
from workstation.plugins.api import AnalysisSpec, Parameter, hookimpl

WORKSTATION_PLUGIN_API = "1.0"


@hookimpl
def workstation_analyses():
    return [AnalysisSpec(id="demo.bone", title="Bone", version="0.1.0",
                         description="Voxels above a HU threshold.",
                         entry="ws_check_demo.model:run",
                         returns=["label_map"],
                         parameters=[Parameter("lower", "float", default=300, help="{help}")])]
"""

MODEL = """
import numpy as np
from workstation.plugins.api import Label, LabelMap


def run(ctx):
    mask = (ctx.volume.array >= ctx.params["lower"]).astype(np.uint8)
    return LabelMap(name="bone", volume=ctx.volume.with_array(mask), labels=[Label(1, "bone")])
"""


def run_cli(*args: str, cwd: Path, extra_path: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), extra_path) if p)}
    env["WORKSTATION_NO_PLUGIN_AUTOLOAD"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "workstation.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        cwd=cwd,
    )


def test_plugins_check_passes_a_good_project(tmp_path) -> None:
    project = write_project(tmp_path / "good", HOOKS.format(heavy="", help="lowest HU"), MODEL)
    done = run_cli("plugins", "check", str(project), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "loads no torch or monai" in done.stdout
    assert "analysis demo.bone: ran on a synthetic CT volume" in done.stdout
    assert done.stdout.strip().endswith("passed")


def test_plugins_check_reports_heavy_import_and_missing_help(tmp_path) -> None:
    fake_site = tmp_path / "fake-site" / "monai"
    fake_site.mkdir(parents=True)
    (fake_site / "__init__.py").write_text("")  # stands in for monai: only its import is seen
    hooks = HOOKS.format(heavy="import monai", help="")
    project = write_project(tmp_path / "heavy", hooks, MODEL)
    done = run_cli("plugins", "check", str(project), cwd=tmp_path, extra_path=str(fake_site.parent))
    assert done.returncode == 1
    assert "importing ws_check_demo.hooks imports monai" in done.stdout
    assert "parameter 'lower' has no help text" in done.stdout
    assert "FAILED" in done.stdout


def test_plugins_check_reports_a_failing_analysis(tmp_path) -> None:
    model = MODEL.replace("mask = ", "raise RuntimeError('weights missing')\n    mask = ")
    project = write_project(tmp_path / "fails", HOOKS.format(heavy="", help="lowest HU"), model)
    done = run_cli("plugins", "check", str(project), "--json", cwd=tmp_path)
    report = json.loads(done.stdout)
    assert done.returncode == 1 and report["passed"] is False
    errors = [f["message"] for f in report["findings"] if f["level"] == "error"]
    assert any("RuntimeError: weights missing" in e for e in errors)


def test_run_on_an_indexed_series_writes_a_seg_that_shows_under_its_study(
    installed, tmp_path, capsys
) -> None:
    from workstation.dicom.catalog import Catalog
    from workstation.testing.synthetic import make_synthetic_ct_series

    store = tmp_path / "store"
    series = make_synthetic_ct_series(tmp_path / "dicom", store, shape=(6, 32, 32))
    out = tmp_path / "run"
    argv = ["--store", str(store), "run", "sample.threshold", "--series", series.series_id]
    assert main([*argv, "--out", str(out), "--param", "lower=100"]) == 0, capsys.readouterr().err
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["analysis"]["id"] == "sample.threshold"
    assert manifest["parameters"] == {"lower": 100.0, "label": "fg"}
    seg_files = [o["path"] for o in manifest["outputs"] if o["kind"] == "dicom-seg"] or [
        p.name for p in out.glob("*.dcm")
    ]
    assert seg_files, manifest["outputs"]
    with Catalog(store) as catalog:
        (patient,) = catalog.tree()
        (study,) = patient["studies"]
        modalities = sorted(s["modality"] for s in study["series"])
    assert modalities == ["CT", "SEG"]
    capsys.readouterr()
    assert main(["--store", str(store), "runs", "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["outcome"] == "succeeded" and record["inputs"]["series_uid"] == series.series_id
