"""What `workstation run` prints when a run does not succeed: an error meant for the user (the
model helpers' errors, a parameter or input the analysis refuses) is one `workstation: error:`
line with no traceback, in-process and isolated; an unexpected exception still prints its
traceback; the run record keeps the traceback either way; an untrusted model is a refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workstation.cli import main

FAILING_PLUGIN = """
import numpy as np

from workstation.plugins.api import (
    AnalysisSpec, CheckpointError, InputRefused, ParameterError, UntrustedModel, hookimpl,
)

WORKSTATION_PLUGIN_API = "1.2"


def _spec(id, entry):
    return AnalysisSpec(id=id, title=id, version="1.0", entry=f"{__name__}:{entry}",
                        description="fails on purpose", returns=["report"])


@hookimpl
def workstation_analyses():
    return [
        _spec("failing.checkpoint", "checkpoint"),
        _spec("failing.untrusted", "untrusted"),
        _spec("failing.parameters", "parameters"),
        _spec("failing.input", "refuses_input"),
        _spec("failing.bug", "bug"),
    ]


def _load_weights(path):
    raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (truncated?)")


def checkpoint(ctx):
    _load_weights("/models/cut.pt")


def untrusted(ctx):
    raise UntrustedModel("The bundle /models/b is not trusted.", "What /models/b would run: ...")


def parameters(ctx):
    raise ParameterError("parameter 'roi_size' 8 is smaller than the network's 16")


def refuses_input(ctx):
    raise InputRefused(f"the series is {ctx.volume.shape[2]} pixels wide; the model needs 32")


def bug(ctx):
    return {}["missing key"]
"""


@pytest.fixture
def installed(fake_distribution):
    fake_distribution(
        "workstation-failing-sample",
        "1.0",
        {"ws_failing_sample": FAILING_PLUGIN},
        {"failing": "ws_failing_sample"},
    )


@pytest.fixture(scope="module")
def ct_folder(tmp_path_factory) -> Path:
    from workstation.testing.synthetic import make_synthetic_ct_series

    root = tmp_path_factory.mktemp("errors-ct")
    make_synthetic_ct_series(root / "dicom", root / "index", shape=(3, 16, 16), lesions=0)
    return root / "dicom"


def run(store: Path, analysis: str, folder: Path, out: Path, *args: str) -> int:
    argv = ["--store", str(store), "run", analysis, "--input", str(folder), "--out", str(out)]
    return main([*argv, *args])


def last_record(store: Path, capsys) -> dict:
    capsys.readouterr()
    assert main(["--store", str(store), "runs", "--json"]) == 0
    return json.loads(capsys.readouterr().out)[0]


@pytest.mark.parametrize("mode", ["--in-process", "--isolated"])
def test_a_model_error_is_one_line_and_its_traceback_stays_in_the_record(
    installed, ct_folder, tmp_path, capsys, mode
):
    store = tmp_path / "store"
    assert run(store, "failing.checkpoint", ct_folder, tmp_path / "o", mode) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("workstation: error:")]
    assert line == (
        "workstation: error: failing.checkpoint failed: /models/cut.pt: not a readable "
        "PyTorch checkpoint (truncated?)"
    )
    record = last_record(store, capsys)
    assert record["outcome"] == "failed"
    assert "in _load_weights" in record["traceback"]  # where it came from, for a bug report


def test_the_traceback_flag_prints_it_for_an_error_meant_for_the_user(
    installed, ct_folder, tmp_path, capsys
):
    code = run(tmp_path / "s", "failing.checkpoint", ct_folder, tmp_path / "o", "--traceback")
    assert code == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "in _load_weights" in err


def test_an_unexpected_exception_still_prints_its_traceback(installed, ct_folder, tmp_path, capsys):
    assert run(tmp_path / "s", "failing.bug", ct_folder, tmp_path / "o") == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "workstation: error: failing.bug failed: KeyError: 'missing key'" in err


@pytest.mark.parametrize("mode", ["--in-process", "--isolated"])
@pytest.mark.parametrize(
    ("analysis", "message"),
    [
        ("failing.untrusted", "The bundle /models/b is not trusted."),
        ("failing.parameters", "parameter 'roi_size' 8 is smaller than the network's 16"),
        ("failing.input", "the series is 16 pixels wide; the model needs 32"),
    ],
)
def test_refusals_raised_by_the_analysis_exit_2_without_a_traceback(
    installed, ct_folder, tmp_path, capsys, mode, analysis, message
):
    store = tmp_path / "store"
    assert run(store, analysis, ct_folder, tmp_path / "o", mode) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"workstation: error: {analysis} refused: {message}" in err
    assert last_record(store, capsys)["outcome"] == "refused"


@pytest.mark.parametrize("isolated", [False, True])
def test_the_outcome_names_the_error_class_and_its_bases_for_callers(
    installed, ct_folder, isolated
) -> None:
    """`evaluate` stops at the first case on any model error: it reads the class names, which
    an isolated worker's exception cannot be checked against directly."""
    from workstation.plugins.inputs import from_path
    from workstation.plugins.manager import load_registry
    from workstation.plugins.runner import Runner

    registry = load_registry()
    inputs = from_path(ct_folder, registry)
    with Runner(registry, isolated=isolated) as runner:
        outcome = runner.run("failing.checkpoint", inputs)
        bug = runner.run("failing.bug", inputs)
    assert outcome.error_types[:3] == ("CheckpointError", "ModelError", "UserFacingError")
    assert bug.error_types == ("KeyError", "LookupError")
