"""Non-image results (JSON/CSV/Markdown), the run.json manifest, demo-weights marking and the
run_info the runner hands over."""

from __future__ import annotations

import csv
import hashlib
import json
import sys

import numpy as np
import pytest

from workstation.core.refs import PatientRef
from workstation.core.results import (
    Classification,
    HeatMap,
    Measurements,
    Report,
    TimeSeries,
)
from workstation.core.volume import Volume
from workstation.outputs import WRITERS, OutputError, RunInfo, write_results
from workstation.outputs.tables import column_heading


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_every_result_kind_has_a_writer():
    from workstation.core.results import RESULT_TYPES

    assert set(WRITERS) == set(RESULT_TYPES)


def test_classification_measurements_time_series_and_report(tmp_path):
    volume = Volume(np.zeros((2, 3, 4), np.float32))
    results = [
        Classification(
            name="nodule",
            labels=["benign", "malignant"],
            probabilities=[0.2, 0.8],
            explanation=HeatMap(
                name="why", volume=volume.with_array(np.ones((2, 3, 4), np.float32))
            ),
        ),
        Measurements(
            name="volumes",
            columns=["organ", "volume"],
            units={"volume": "mL"},
            rows=[["liver", 1510.5], ["spleen", float("nan")]],
        ),
        TimeSeries(
            name="risk",
            patient=PatientRef("MRN-7", name="Doe^Jane"),
            times=["2024-01-01", "2024-02-01"],
            values=[0.1, 0.3],
            units="probability",
            attributions={"creatinine": [0.0, 0.2]},
        ),
        Report(name="summary", text="# Findings\n\nNo lesion."),
    ]
    info = RunInfo(analysis_id="test.all", analysis_version="1.0", analysis_title="All")
    files = write_results(results, tmp_path, info)
    names = sorted(f.path.name for f in files)
    assert names == sorted(
        [
            "nodule.json",
            "nodule.csv",
            "nodule.explanation.nii.gz",
            "volumes.json",
            "volumes.csv",
            "risk.json",
            "risk.csv",
            "risk.png",
            "summary.md",
            "run.json",
        ]
    )
    nodule = json.loads((tmp_path / "nodule.json").read_text())
    assert nodule["predicted"] == "malignant"
    assert nodule["classes"][1] == {"label": "malignant", "probability": 0.8}
    assert _rows(tmp_path / "nodule.csv") == [
        ["label", "probability"],
        ["benign", "0.2"],
        ["malignant", "0.8"],
    ]
    volumes = json.loads((tmp_path / "volumes.json").read_text())
    assert volumes["units"] == {"volume": "mL"}
    assert volumes["rows"][1] == {"organ": "spleen", "volume": None}  # NaN is not JSON
    assert _rows(tmp_path / "volumes.csv")[0] == ["organ", "volume (mL)"]
    risk = json.loads((tmp_path / "risk.json").read_text())
    assert risk["patient_id"] == "MRN-7"
    assert "Doe" not in (tmp_path / "risk.json").read_text()
    assert _rows(tmp_path / "risk.csv") == [
        ["time", "value (probability)", "attribution creatinine"],
        ["2024-01-01", "0.1", "0.0"],
        ["2024-02-01", "0.3", "0.2"],
    ]
    report = (tmp_path / "summary.md").read_text()
    assert report.startswith("# Findings") and "test.all 1.0" in report


def test_time_series_plot_draws_the_curve_and_says_demo(tmp_path):
    from PIL import Image

    series = TimeSeries(
        name="risk",
        description="Renal risk",
        times=["2024-01-01T00:00:00Z", "2024-03-01T00:00:00Z", "2024-06-01T00:00:00Z"],
        values=[0.1, 0.5, 0.9],
        units="probability",
        attributions={"creatinine": [0.0, 0.4, 0.8], "systolic": [0.1, -0.2, 0.0]},
    )
    info = RunInfo(analysis_id="test.rnn", analysis_version="1.0", demo_weights=True)
    files = write_results([series], tmp_path, info)
    plot = next(f for f in files if f.kind == "png")
    image = np.asarray(Image.open(plot.path).convert("RGB")).astype(int)
    height = image.shape[0]
    # the curve's colour (#c0392b) is drawn, in the upper part of the figure where the curve is
    red = (abs(image[..., 0] - 0xC0) < 40) & (image[..., 1] < 100) & (image[..., 2] < 100)
    assert red[: height // 2].sum() > 50
    # and the attribution strip below uses both signs of the diverging colour map
    lower = image[height // 2 :]
    assert ((lower[..., 2] - lower[..., 0]) > 60).any() and (
        (lower[..., 0] - lower[..., 2]) > 60
    ).any()


def test_run_json_lists_run_and_outputs_with_checksums(tmp_path):
    info = RunInfo.coerce(
        {
            # the shape the plugin host's runner passes
            "run_id": "20240101T000000-abc",
            "analysis": {
                "id": "test.m",
                "title": "M",
                "version": "4.2",
                "plugin": "m",
                "distribution": "workstation-m",
                "distribution_version": "4.2.0",
            },
            "parameters": {"level": 2},
            "inputs": {"series_uid": "1.2.3", "shape": [2, 3, 4]},
            "device": "cuda:0",
            "mode": "isolated",
            "seed": 7,
            "started_at": "2024-01-01T00:00:00+00:00",
            "duration_s": 1.25,
            "versions": {"plugin_api": "1.0"},
            "source_series": None,
            "source_volume": None,
        }
    )
    files = write_results([Measurements(name="t", columns=["a"], rows=[[1]])], tmp_path, info)
    assert files[-1].path.name == "run.json" and files[-1].kind == "manifest"
    manifest = json.loads((tmp_path / "run.json").read_text())
    assert manifest["analysis"]["id"] == "test.m" and manifest["analysis"]["version"] == "4.2"
    assert manifest["parameters"] == {"level": 2}
    assert manifest["inputs"]["series_uid"] == "1.2.3"
    assert manifest["device"] == "cuda:0" and manifest["duration_s"] == 1.25
    assert manifest["started_at"] == "2024-01-01T00:00:00+00:00"
    versions = manifest["versions"]
    assert versions["python"] == ".".join(map(str, sys.version_info[:3]))
    assert versions["numpy"] == np.__version__ and versions["workstation-m"] == "4.2.0"
    assert ("torch" in versions) == ("torch" in sys.modules)
    outputs = {o["path"]: o for o in manifest["outputs"]}
    assert set(outputs) == {"t.json", "t.csv"}
    for name, entry in outputs.items():
        data = (tmp_path / name).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["size"] == len(data)


def test_demo_weights_are_marked_everywhere(tmp_path):
    info = RunInfo(
        analysis_id="test.model",
        analysis_version="0.1",
        demo_weights=True,
        weights="/somewhere/demo.pt",
    )
    volume = Volume(np.zeros((2, 3, 4), np.float32))
    write_results(
        [
            Classification(name="c", labels=["a", "b"], probabilities=[0.4, 0.6]),
            Report(name="r", text="Looks fine."),
            HeatMap(name="h", volume=volume),
        ],
        tmp_path,
        info,
    )
    assert json.loads((tmp_path / "c.json").read_text())["demo_weights"] is True
    assert _rows(tmp_path / "c.csv")[0][-1] == "demo_weights"
    assert all(row[-1] == "yes" for row in _rows(tmp_path / "c.csv")[1:])
    assert "Demo weights" in (tmp_path / "r.md").read_text()
    manifest = json.loads((tmp_path / "run.json").read_text())
    assert manifest["demo_weights"] is True and manifest["weights"]["demo"] is True
    import nibabel as nib

    assert b"DEMO WEIGHTS" in nib.load(tmp_path / "h.nii.gz").header["descrip"].item()


def test_same_names_do_not_overwrite_each_other(tmp_path):
    tables = [Measurements(name="Volumes / mL", columns=["a"], rows=[[n]]) for n in range(2)]
    files = write_results(tables, tmp_path, RunInfo(analysis_id="test.t"))
    assert sorted(f.path.name for f in files if f.kind == "json") == [
        "volumes_ml.json",
        "volumes_ml_2.json",
    ]


def test_a_non_result_is_refused_naming_the_analysis(tmp_path):
    with pytest.raises(TypeError, match=r"test\.x returned dict"):
        write_results([{"score": 1}], tmp_path, RunInfo(analysis_id="test.x"))


def test_one_failing_result_does_not_stop_the_others(tmp_path, monkeypatch):
    from workstation.outputs import write as write_module

    def broken(*args):
        raise RuntimeError("disk full")

    monkeypatch.setitem(write_module.WRITERS, "report", broken)
    with pytest.raises(OutputError, match="report 'r': RuntimeError: disk full"):
        write_results(
            [Report(name="r", text="x"), Measurements(name="m", columns=["a"], rows=[[1]])],
            tmp_path,
            RunInfo(analysis_id="test.x"),
        )
    assert (tmp_path / "m.csv").exists()
    manifest = json.loads((tmp_path / "run.json").read_text())
    assert manifest["errors"] == ["report 'r': RuntimeError: disk full"]


def test_runner_dict_with_shipped_weights_marks_demo_and_model(tmp_path):
    info = RunInfo.coerce(
        {
            "analysis": {"id": "seg.ct", "version": "0.1.0"},
            "weights": {"path": "/site-packages/pkg/data/demo.pt", "demo": True},
            "uses_model": True,
        }
    )
    assert info.demo_weights and info.uses_model and info.weights.endswith("demo.pt")
    provenance = info.provenance()
    assert provenance.demo_weights and provenance.uses_model
    assert provenance.describe("SEG").startswith("DEMO WEIGHTS - NOT FOR CLINICAL USE")


@pytest.mark.parametrize(
    ("column", "unit", "heading"),
    [
        ("volume", "mL", "volume (mL)"),
        ("volume_ml", "mL", "volume_ml"),
        ("voxels", "voxels", "voxels"),
        ("mean HU", "HU", "mean HU"),
        ("ratio", "", "ratio"),
        ("dose", None, "dose"),
        ("mlx", "mL", "mlx (mL)"),
    ],
)
def test_csv_headings_say_a_unit_once(column, unit, heading) -> None:
    assert column_heading(column, unit) == heading
