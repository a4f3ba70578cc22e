"""What `workstation run` checks and records, as a plugin author and a user see it: refused
weights, off-grid and unnamed-label results, heat map colour maps and units, the weights and
API versions in run.json and DICOM headers, and the progress lines on stderr."""

from __future__ import annotations

import hashlib
import json
import re
import textwrap
from pathlib import Path

import numpy as np
import pydicom
import pytest

from workstation.cli import main
from workstation.core.results import Label, LabelMap
from workstation.core.volume import Volume
from workstation.plugins.worker import name_missing_labels


@pytest.fixture
def installed(fake_distribution, sample_plugin_source):
    fake_distribution(
        "workstation-checks-sample",
        "1.2.3",
        {"ws_checks_sample": sample_plugin_source},
        {"sample": "ws_checks_sample"},
    )


@pytest.fixture(scope="module")
def ct_series(tmp_path_factory):
    """A small indexed DICOM CT series (the store is copied per test)."""
    from workstation.testing.synthetic import make_synthetic_ct_series

    root = tmp_path_factory.mktemp("checks-ct")
    return make_synthetic_ct_series(root / "dicom", root / "store", shape=(4, 24, 24), lesions=1)


@pytest.fixture
def store(ct_series, tmp_path) -> Path:
    import shutil

    copy = tmp_path / "store"
    shutil.copytree(ct_series.store_dir, copy)
    return copy


def run(store: Path, analysis: str, out: Path, *args: str) -> int:
    return main(["--store", str(store), "run", analysis, "--out", str(out), *args])


def runs(store: Path, capsys) -> list[dict]:
    capsys.readouterr()
    assert main(["--store", str(store), "runs", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


# --- weights ------------------------------------------------------------------------------------
def test_missing_weights_file_is_refused_before_the_run_starts(
    installed, store, ct_series, tmp_path, capsys
) -> None:
    out = tmp_path / "out"
    series = ["--series", ct_series.series_id]
    code = run(store, "sample.weights", out, *series, "--weights", "no/such/model.pt")
    err = capsys.readouterr().err
    assert code == 2, err
    missing = (Path.cwd() / "no/such/model.pt").absolute()
    assert f"weights {missing}: no such file or folder" in err
    assert not out.exists()  # nothing ran, nothing written
    (record,) = runs(store, capsys)
    assert record["outcome"] == "refused" and str(missing) in record["error"]


def test_run_json_and_dicom_name_the_weights_by_absolute_path_and_sha256(
    installed, store, ct_series, tmp_path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("model.pt").write_bytes(b"not really a model, but bytes with a known hash")
    expected = hashlib.sha256(Path("model.pt").read_bytes()).hexdigest()
    series = ["--series", ct_series.series_id]
    assert run(store, "sample.weights", tmp_path / "w", *series, "--weights", "model.pt") == 0
    manifest = json.loads((tmp_path / "w" / "run.json").read_text())
    assert manifest["weights"] == {
        "path": str(tmp_path / "model.pt"),
        "sha256": expected,
        "demo": False,
    }
    report = (tmp_path / "w" / "weights.md").read_text()
    assert str(tmp_path / "model.pt") in report  # ctx.weights is the absolute path

    # a DICOM object made with weights names them in DerivationDescription
    assert run(store, "sample.heat", tmp_path / "h", *series, "--weights", "model.pt") == 0
    (pmap,) = (tmp_path / "h").glob("*.pmap.dcm")
    derivation = pydicom.dcmread(pmap).DerivationDescription
    assert f"weights: model.pt sha256 {expected[:16]}" in derivation


def test_run_json_records_both_plugin_api_versions(installed, store, ct_series, tmp_path) -> None:
    assert run(store, "sample.weights", tmp_path / "o", "--series", ct_series.series_id) == 0
    versions = json.loads((tmp_path / "o" / "run.json").read_text())["versions"]
    assert versions["plugin_api"] == "1.2"  # what this workstation implements
    assert versions["plugin_api_declared"] == "1.0"  # what the plugin was written for


# --- image results ------------------------------------------------------------------------------
def test_off_grid_result_names_what_differs_and_how_to_fix_it(
    installed, store, ct_series, tmp_path, capsys
) -> None:
    code = run(store, "sample.off_grid", tmp_path / "o", "--series", ct_series.series_id)
    err = capsys.readouterr().err
    assert code == 1
    assert "is not on the input's grid: origin (0, 0, 0) mm vs the input's (" in err
    assert "spacing" not in err.split("grid:")[1].split(";")[0]  # only what differs is named
    assert "ctx.volume.with_array(array)" in err and "source.with_array" not in err


def test_label_values_without_a_label_warn_and_every_output_names_them_alike(
    installed, store, ct_series, tmp_path, capsys
) -> None:
    out = tmp_path / "o"
    assert run(store, "sample.unnamed", out, "--series", ct_series.series_id) == 0
    err = capsys.readouterr().err
    assert "warning: sample.unnamed: label map 'parts' has values 2 that its `labels` do not" in err
    assert 'Add Label(2, "name")' in err
    table = json.loads((out / "parts.labels.json").read_text())
    assert [(e["value"], e["name"]) for e in table["labels"]] == [(1, "first"), (2, "Label 2")]
    assert table["labels"][1]["volume_ml"] > 0
    (seg,) = out.glob("*.seg.dcm")
    segments = [s.SegmentLabel for s in pydicom.dcmread(seg).SegmentSequence]
    assert segments == ["first", "Label 2"]


UNNAMED = """
import numpy as np
from workstation.plugins.api import AnalysisSpec, Label, LabelMap, hookimpl

WORKSTATION_PLUGIN_API = "1.0"


@hookimpl
def workstation_analyses():
    return [AnalysisSpec(id="parts.split", title="Parts", version="0.1", description="Two parts.",
                         entry=__name__ + ":split", returns=["label_map"])]


def split(ctx):
    array = np.zeros(ctx.volume.array.shape, np.uint8)
    array[0], array[-1] = 1, 2
    return LabelMap(name="parts", volume=ctx.volume.with_array(array), labels=[Label(1, "first")])
"""


def test_plugins_check_warns_about_unnamed_label_values_but_passes(tmp_path) -> None:
    from workstation.plugins.check import check_plugin

    module = tmp_path / "ws_check_unnamed_parts.py"
    module.write_text(textwrap.dedent(UNNAMED))
    report = check_plugin(str(module))
    warnings = [f.message for f in report.findings if f.level == "warning"]
    assert report.passed, [f.line() for f in report.findings]
    assert any("'parts' has values 2 that its `labels` do not name" in w for w in warnings)


@pytest.mark.parametrize(
    ("colormap", "units", "shown", "ucum", "warned"),
    [
        ("hot", "%", "hot", "%", []),
        ("gray", "mm2/s", "grey", "mm2/s", []),
        ("nonsense", "%", "inferno", "%", ["colormap 'nonsense' is not one the viewer has"]),
        ("inferno", "fraction", "inferno", "1", ["units 'fraction' are not a UCUM code"]),
        ("inferno", "HU", "inferno", "[hnsf'U]", ["units 'HU' are not a UCUM code"]),
        ("inferno", "evidence (0-1)", "inferno", "1", ["DICOM says '1' (no units)"]),
    ],
)
def test_heat_map_colormap_and_units_are_checked_recorded_and_written(
    installed, store, ct_series, tmp_path, capsys, colormap, units, shown, ucum, warned
) -> None:
    out = tmp_path / "o"
    params = ["--param", f"colormap={colormap}", "--param", f"units={units}"]
    assert run(store, "sample.heat", out, "--series", ct_series.series_id, *params) == 0
    err = capsys.readouterr().err
    for text in warned:
        assert text in err
    if not warned:
        assert "warning" not in err
    manifest = json.loads((out / "run.json").read_text())
    (entry,) = manifest["results"]
    assert entry["colormap"] == shown and entry["units"] == units
    assert entry["units_ucum"] == ucum and entry["value_range"][1] > entry["value_range"][0]
    (pmap,) = out.glob("*.pmap.dcm")
    mapping = pydicom.dcmread(pmap).SharedFunctionalGroupsSequence[0]
    code = mapping.RealWorldValueMappingSequence[0].MeasurementUnitsCodeSequence[0]
    assert (code.CodingSchemeDesignator, code.CodeValue) == ("UCUM", ucum)
    if ucum != units:
        assert any(f"heat: units {units!r}" in note for note in manifest["notes"])


def test_content_description_is_cut_at_a_word(installed, store, ct_series, tmp_path) -> None:
    about = "local fraction of dense voxels inside the body, smoothed with a Gaussian"
    series = ["--series", ct_series.series_id]
    assert run(store, "sample.heat", tmp_path / "o", *series, "--param", f"about={about}") == 0
    (pmap,) = (tmp_path / "o").glob("*.pmap.dcm")
    described = pydicom.dcmread(pmap).ContentDescription
    assert len(described) <= 64 and described.endswith("...")
    kept = described[: -len("...")]
    assert about.startswith(kept) and about[len(kept)] == " "  # cut between words
    assert run(store, "sample.heat", tmp_path / "s", *series) == 0
    (pmap,) = (tmp_path / "s").glob("*.pmap.dcm")
    assert (
        pydicom.dcmread(pmap).ContentDescription == "values above the minimum by sample.heat 1.2.3"
    )


def test_a_non_dicom_input_note_reads_as_a_sentence(installed, tmp_path) -> None:
    from workstation.core.volume import Volume
    from workstation.testing.helpers import run_analysis

    volume = Volume(np.arange(60, dtype=np.int16).reshape(3, 4, 5))
    results = run_analysis(
        "sample.threshold", volume, plugins=["ws_checks_sample"], out_dir=tmp_path / "o"
    )
    assert results.outcome.ok
    notes = json.loads((tmp_path / "o" / "run.json").read_text())["notes"]
    assert "mask: the input was not a DICOM series, so a DICOM Segmentation was not written" in (
        " ".join(notes)
    )
    assert "no a " not in " ".join(notes)


# --- progress on stderr -------------------------------------------------------------------------
def test_progress_lines_never_go_backwards_and_messageless_updates_are_merged(
    installed, store, ct_series, tmp_path, capsys
) -> None:
    assert run(store, "sample.chatty", tmp_path / "o", "--series", ct_series.series_id) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[")]
    percents = [int(re.match(r"\[\s*(\d+)%\]", line).group(1)) for line in lines]
    assert percents == sorted(percents), lines
    assert percents[0] == 40 and percents[-1] == 100
    assert len(lines) <= 10, lines  # 104 updates, a handful of lines
    assert all(re.match(r"\[\s*\d+%\] \S", line) for line in lines), lines  # none empty
    assert "[ 90%] heat map done" not in lines  # 0.9 came after 100 %: shown as 100 %
    assert "[100%] heat map done" in lines


# --- listing and help ---------------------------------------------------------------------------
def test_listing_with_autoload_off_says_why_nothing_is_listed(capsys, monkeypatch) -> None:
    monkeypatch.setenv("WORKSTATION_NO_PLUGIN_AUTOLOAD", "1")
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "no analyses installed" in out
    assert "WORKSTATION_NO_PLUGIN_AUTOLOAD=1 is set" in out and "unset it" in out


def test_store_help_names_every_default_location(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "$WORKSTATION_HOME, else $XDG_DATA_HOME/workstation, else" in help_text
    assert "~/.local/share/workstation" in help_text


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.uint32, np.int64])
@pytest.mark.parametrize("values", [[], [3], [1, 2, 7], [5, 200], list(range(1, 40, 3))])
def test_unnamed_label_values_are_found_whatever_the_map_type(dtype, values) -> None:
    array = np.zeros((3, 5, 7), dtype)
    for index, value in enumerate(values):
        array.flat[index * 3] = value
    volume = Volume(array, spacing=(1.0, 1.0, 1.0))
    result = LabelMap(name="parts", volume=volume, labels=[Label(1, "named one")])
    expected = sorted({int(v) for v in np.unique(array)} - {0, 1})
    assert name_missing_labels(result) == expected
    named = [(1, "named one"), *((v, f"Label {v}") for v in expected)]
    assert [(label.value, label.name) for label in result.labels] == sorted(named)
