"""What a pipeline gets from `workstation run`: warnings logged during the run (by the analysis,
or by the host's model helpers on the "workstation.models" logger, in-process and in the
isolated worker) are printed and kept in run.json's notes; a derived DICOM series is one
"wrote" line for its folder, not one per slice."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path

import pytest

from workstation.cli import main
from workstation.commands.plugins import wrote_lines

OUTPUT_PLUGIN = """
import logging

from workstation.plugins.api import AnalysisSpec, DerivedVolume, Report, hookimpl

WORKSTATION_PLUGIN_API = "1.0"


@hookimpl
def workstation_analyses():
    return [
        AnalysisSpec(id="output.warns", title="warns", version="1.0", entry=f"{__name__}:warns",
                     description="logs warnings", returns=["report"]),
        AnalysisSpec(id="output.derived", title="derived", version="1.0",
                     entry=f"{__name__}:derived", description="a new series",
                     returns=["derived_volume"]),
    ]


def warns(ctx):
    # what the model helpers log while loading a bundle tested with another MONAI version
    logging.getLogger("workstation.models").warning("bundle 'b' was tested with MONAI 1.2.0")
    logging.getLogger("workstation.models").info("model loaded")  # info: not a note
    ctx.logger.warning("the field of view is smaller than the model was trained on")
    return Report(name="r", text="done")


def derived(ctx):
    return DerivedVolume(name="restored", volume=ctx.volume.with_array(ctx.volume.array + 1),
                         series_description="restored")
"""


@pytest.fixture
def installed(fake_distribution):
    fake_distribution(
        "workstation-output-sample",
        "1.0",
        {"ws_output_sample": OUTPUT_PLUGIN},
        {"output": "ws_output_sample"},
    )


@pytest.fixture(scope="module")
def ct_folder(tmp_path_factory) -> Path:
    from workstation.testing.synthetic import make_synthetic_ct_series

    root = tmp_path_factory.mktemp("output-ct")
    make_synthetic_ct_series(root / "dicom", root / "index", shape=(3, 16, 16), lesions=0)
    return root / "dicom"


def run(tmp_path: Path, analysis: str, folder: Path, out: Path, *args: str) -> int:
    argv = ["--store", str(tmp_path / "s"), "run", analysis, "--input", str(folder)]
    return main([*argv, "--out", str(out), *args])


@pytest.mark.parametrize("mode", ["--in-process", "--isolated"])
def test_warnings_logged_during_the_run_are_printed_and_kept_in_run_json(
    installed, ct_folder, tmp_path, capsys, mode
):
    out = tmp_path / "out"
    assert run(tmp_path, "output.warns", ct_folder, out, mode) == 0
    expected = [
        "bundle 'b' was tested with MONAI 1.2.0",
        "the field of view is smaller than the model was trained on",
    ]
    err = capsys.readouterr().err
    assert all(f"warning: {note}" in err for note in expected)
    manifest = json.loads((out / "run.json").read_text())
    assert [n for n in manifest["notes"] if n in expected] == expected
    assert not any("model loaded" in note for note in manifest["notes"])
    # the run record describes run.json as it is now, notes included
    capsys.readouterr()
    assert main(["--store", str(tmp_path / "s"), "runs", "--json"]) == 0
    outputs = json.loads(capsys.readouterr().out)[0]["outputs"]
    (entry,) = [o for o in outputs if Path(o["path"]).name == "run.json"]
    assert entry["sha256"] == hashlib.sha256((out / "run.json").read_bytes()).hexdigest()


def test_only_the_runs_own_models_warnings_become_its_notes():
    from workstation.plugins.run_scope import analysis_scope

    models = logging.getLogger("workstation.models")
    kept: list[str] = []
    with analysis_scope(None, lambda level, message: kept.append(message)):
        models.warning("in the run")
        other = threading.Thread(target=models.warning, args=("another thread",))
        other.start()
        other.join()
    models.warning("after the run")
    assert kept == ["in the run"]


def test_a_derived_dicom_series_is_one_wrote_line(installed, ct_folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(tmp_path, "output.derived", ct_folder, out) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("wrote")]
    slices = sorted((out / "restored").glob("*.dcm"))
    assert len(slices) == 3
    assert f"wrote {out / 'restored'}/ (3 DICOM files)" in lines
    assert not any(line.endswith(".dcm") and "/restored/" in line for line in lines)
    assert f"wrote {out / 'run.json'}" in lines


def test_wrote_lines_keep_single_files_and_group_each_series_folder(tmp_path):
    out = tmp_path / "o"
    paths = [out / "seg.seg.dcm", out / "a" / "0001.dcm", out / "a" / "0002.dcm", out / "a.nii.gz"]
    paths += [out / "b" / "0001.dcm", out / "run.json"]
    assert wrote_lines(paths, out) == [
        f"wrote {out / 'seg.seg.dcm'}",
        f"wrote {out / 'a'}/ (2 DICOM files)",
        f"wrote {out / 'a.nii.gz'}",
        f"wrote {out / 'b' / '0001.dcm'}",
        f"wrote {out / 'run.json'}",
    ]
