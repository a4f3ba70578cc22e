"""Ctrl-C on `workstation train`: the first cancels after the current batch (exit 130, the last
checkpoint kept), a second quits at once; neither ends in a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

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
def cli(fake_distribution, workstation_process, tmp_path):
    """`workstation` subprocesses that see the slow trainers, and a NumPy input."""
    site = fake_distribution(
        "workstation-slow-trainer", "0.1", {"ws_slow_trainer": TRAINER}, {"slow": "ws_slow_trainer"}
    )
    np.save(tmp_path / "ct.npy", np.zeros((4, 6, 5), np.int16))
    return workstation_process(site)


def start_training(cli, tmp_path: Path, analysis: str) -> subprocess.Popen:
    args = ["train", analysis, "--input", str(tmp_path / "ct.npy")]
    args += ["--out", str(tmp_path / "model"), "--epochs", "3", "--device", "cpu"]
    return cli.start(tmp_path / "store", *args)


def test_ctrl_c_cancels_training_and_exits_130(cli, tmp_path) -> None:
    process = start_training(cli, tmp_path, "slow.cooperative")
    try:
        cli.wait_for(process)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "Traceback" not in err, err
    assert "cancelling after this batch (Ctrl-C again to quit now" in err
    assert "training slow.cooperative cancelled" in err


def test_a_second_ctrl_c_quits_training_at_once_without_a_traceback(cli, tmp_path) -> None:
    """`slow.stubborn` ignores cancellation; the second Ctrl-C does not wait for it."""
    process = start_training(cli, tmp_path, "slow.stubborn")
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
    assert "quitting now" in err and "Traceback" not in err, err
    assert "the last complete checkpoint is kept" in err
