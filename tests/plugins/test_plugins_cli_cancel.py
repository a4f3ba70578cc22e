"""Ctrl-C on `workstation run`: the run ends "cancelled", exit 130, and is recorded as such."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

READER = """
import numpy as np
from workstation.plugins.api import ReaderSpec, Volume, hookimpl

WORKSTATION_PLUGIN_API = "1.0"


@hookimpl
def workstation_readers():
    return [ReaderSpec(id="cancel.npy", title="NumPy array", extensions=[".npy"],
                       entry=__name__ + ":read")]


def read(path):
    return Volume(np.load(path), spacing=(0.5, 0.5, 3.0))
"""


@pytest.fixture
def cli(fake_distribution, sample_plugin_source, workstation_process, tmp_path):
    """`workstation` subprocesses that see the sample analyses, and a NumPy input."""
    site = fake_distribution(
        "workstation-cancel-sample",
        "1.2.3",
        {"ws_cancel_sample": sample_plugin_source, "ws_cancel_reader": READER},
        {"sample": "ws_cancel_sample", "reader": "ws_cancel_reader"},
    )
    np.save(tmp_path / "ct.npy", np.zeros((4, 6, 5), np.int16))
    return workstation_process(site)


def start_run(cli, tmp_path: Path, analysis: str, *extra: str) -> subprocess.Popen:
    args = ["run", analysis, "--input", str(tmp_path / "ct.npy"), "--out", str(tmp_path / "out")]
    return cli.start(tmp_path / "store", *args, *extra)


def recorded_runs(cli, tmp_path: Path) -> list[dict]:
    command = [sys.executable, "-m", "workstation.cli", "--store", str(tmp_path / "store")]
    done = subprocess.run(
        [*command, "runs", "--json"], env=cli.env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("mode", [[], ["--isolated"]], ids=["in-process", "isolated"])
def test_ctrl_c_cancels_the_run_exits_130_and_records_it(cli, tmp_path, mode) -> None:
    process = start_run(cli, tmp_path, "sample.cooperative", *mode)
    try:
        cli.wait_for(process)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "Traceback" not in err and "not recorded" not in err, err
    assert "cancelling (Ctrl-C again to quit now)" in err
    assert "sample.cooperative cancelled" in err
    (run,) = recorded_runs(cli, tmp_path)
    assert run["outcome"] == "cancelled" and run["duration_s"] is not None
    assert run["mode"] == ("isolated" if mode else "in-process")
    assert run["run_id"] in err


def test_a_second_ctrl_c_quits_at_once_and_records_the_run_cancelled(cli, tmp_path) -> None:
    """`sample.stubborn` ignores cancellation; the second Ctrl-C does not wait for it."""
    process = start_run(cli, tmp_path, "sample.stubborn", "--isolated")
    try:
        cli.wait_for(process)
        os.killpg(process.pid, signal.SIGINT)
        assert "cancelling" in process.stderr.readline() + process.stderr.readline()
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "quitting now" in err and "Traceback" not in err
    (run,) = recorded_runs(cli, tmp_path)
    assert run["outcome"] == "cancelled"
    assert run["error"] == "cancelled; its worker was stopped"
