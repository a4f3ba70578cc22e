"""A bundle folder given as weights runs in the isolated worker (loading a bundle runs its code)
unless the caller asked for in-process; other weights run as before. run.json says which."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import pytest

from workstation.cli import main
from workstation.plugins.manager import load_registry
from workstation.plugins.runner import Runner

PID_PLUGIN = """
import os

from workstation.plugins.api import AnalysisSpec, Report, hookimpl

WORKSTATION_PLUGIN_API = "1.1"


@hookimpl
def workstation_analyses():
    return [AnalysisSpec(id="where.pid", title="pid", version="1.0", entry=f"{__name__}:pid",
                         description="the process it ran in", returns=["report"],
                         inputs_optional=True)]


def pid(ctx):
    return Report(name="pid", text=str(os.getpid()))
"""


@pytest.fixture
def pid_plugin(write_module):
    return importlib.import_module(write_module(PID_PLUGIN))


@pytest.fixture
def weights(tmp_path: Path) -> dict[str, Path]:
    bundle = tmp_path / "bundle"
    (bundle / "configs").mkdir(parents=True)
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"weights")
    return {"bundle": bundle, "checkpoint": checkpoint}


@pytest.mark.parametrize(
    ("chosen", "asked", "expected"),
    [
        ("bundle", None, "isolated"),
        ("bundle", False, "in-process"),  # a headless caller that asked keeps it
        ("checkpoint", None, "in-process"),
        ("checkpoint", True, "isolated"),
    ],
)
def test_bundles_run_isolated_unless_asked_otherwise(pid_plugin, weights, chosen, asked, expected):
    with Runner(load_registry([pid_plugin])) as runner:
        outcome = runner.run("where.pid", weights=weights[chosen], isolated=asked)
    assert outcome.ok, outcome.error
    assert outcome.mode == expected
    ran_here = outcome.results[0].text == str(os.getpid())
    assert ran_here == (expected == "in-process")


def test_a_runner_made_in_process_keeps_bundles_in_process(pid_plugin, weights):
    with Runner(load_registry([pid_plugin]), isolated=False) as runner:
        outcome = runner.run("where.pid", weights=weights["bundle"])
    assert outcome.mode == "in-process" and outcome.results[0].text == str(os.getpid())


@pytest.fixture
def installed(fake_distribution):
    fake_distribution("workstation-pid", "1.0", {"ws_pid": PID_PLUGIN}, {"pid": "ws_pid"})


@pytest.mark.parametrize(
    ("flag", "expected"), [((), "isolated"), (("--in-process",), "in-process")]
)
def test_workstation_run_records_the_mode_it_chose(installed, weights, tmp_path, flag, expected):
    out = tmp_path / "out"
    argv = ["--store", str(tmp_path / "s"), "run", "where.pid", "--out", str(out)]
    assert main([*argv, "--weights", str(weights["bundle"]), *flag]) == 0
    assert json.loads((out / "run.json").read_text())["mode"] == expected
    assert (out / "pid.md").read_text().startswith(str(os.getpid())) == (expected == "in-process")
