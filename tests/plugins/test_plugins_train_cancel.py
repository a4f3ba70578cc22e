"""Ctrl-C on `workstation train`: the first cancels after the current batch (exit 130, the last
checkpoint kept), a second quits at once; neither ends in a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

TRAINER = """
import time

import numpy as np

from workstation.plugins.api import AnalysisSpec, ReaderSpec, Volume, hookimpl

WORKSTATION_PLUGIN_API = "1.1"


@hookimpl
def workstation_analyses():
    return [
        AnalysisSpec(id=f"slow.{name}", title=name, version="0.1", entry=f"{__name__}:run",
                     train_entry=f"{__name__}:{name}", returns=["report"])
        for name in ("cooperative", "stubborn")
    ]


@hookimpl
def workstation_readers():
    return [ReaderSpec(id="slow.npy", title="NumPy array", extensions=[".npy"],
                       entry=__name__ + ":read")]


def read(path):
    return Volume(np.load(path), spacing=(0.5, 0.5, 3.0))


def run(ctx):
    raise NotImplementedError


def cooperative(ctx):
    ctx.progress(0.0, "started")
    while True:
        ctx.check_cancelled()
        time.sleep(0.01)


def stubborn(ctx):
    ctx.progress(0.0, "started")
    time.sleep(60)
"""


@pytest.fixture
def cli_env(fake_distribution, tmp_path) -> dict[str, str]:
    site = fake_distribution(
        "workstation-slow-trainer", "0.1", {"ws_slow_trainer": TRAINER}, {"slow": "ws_slow_trainer"}
    )
    np.save(tmp_path / "ct.npy", np.zeros((4, 6, 5), np.int16))
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)])}


def start_training(env: dict[str, str], tmp_path: Path, analysis: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "workstation.cli", "--store", str(tmp_path / "store")]
    command += ["train", analysis, "--input", str(tmp_path / "ct.npy")]
    command += ["--out", str(tmp_path / "model"), "--epochs", "3", "--device", "cpu"]
    # its own process group, so Ctrl-C can go to the whole group as a terminal sends it
    return subprocess.Popen(
        command, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def wait_until_training(process: subprocess.Popen) -> str:
    seen = ""
    while "started" not in seen:
        line = process.stderr.readline()
        assert line, f"training ended before it started: {seen}"
        seen += line
    return seen


def test_ctrl_c_cancels_training_and_exits_130(cli_env, tmp_path) -> None:
    process = start_training(cli_env, tmp_path, "slow.cooperative")
    try:
        wait_until_training(process)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "Traceback" not in err, err
    assert "cancelling after this batch (Ctrl-C again to quit now" in err
    assert "training slow.cooperative cancelled" in err


def test_a_second_ctrl_c_quits_training_at_once_without_a_traceback(cli_env, tmp_path) -> None:
    """`slow.stubborn` ignores cancellation; the second Ctrl-C does not wait for it."""
    process = start_training(cli_env, tmp_path, "slow.stubborn")
    try:
        wait_until_training(process)
        os.killpg(process.pid, signal.SIGINT)
        assert "cancelling" in process.stderr.readline() + process.stderr.readline()
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "quitting now" in err and "Traceback" not in err, err
    assert "the last complete checkpoint is kept" in err
