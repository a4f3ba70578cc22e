"""Stopping a training process that will not stop: after the grace following Cancel it is sent
SIGTERM, and a trainer that ignores that too is killed and reported as killed (never as a
clean cancel with no exit code); the application quitting waits a bounded time and leaves no
training process behind."""

from __future__ import annotations

import importlib
import signal
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from workstation.gui.training_dialog import TrainingDialog
from workstation.gui.training_job import TrainJob

pytestmark = pytest.mark.gui

SERIES_UID = "1.2.826.0.1.7301"

STUBBORN = """
import signal
import time

from workstation.plugins.api import AnalysisSpec, hookimpl

WORKSTATION_PLUGIN_API = "1.0"
M = __name__


@hookimpl
def workstation_analyses():
    return [
        AnalysisSpec(id="gui.stubborn", title="Ignores SIGTERM", version="1.0",
                     entry=f"{M}:train", train_entry=f"{M}:train", returns=["report"]),
    ]


def train(ctx):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a trainer stuck where signals wait
    ctx.progress(0.1, "stuck")
    while True:  # never polls check_cancelled
        time.sleep(0.05)
"""


@pytest.fixture
def stubborn_spec(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stubborn-plugin")
    name = f"ws_gui_stubborn_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(textwrap.dedent(STUBBORN))
    sys.path.insert(0, str(folder))  # the spawned training process inherits sys.path
    importlib.invalidate_caches()
    from workstation.plugins.manager import load_registry

    yield load_registry([importlib.import_module(name)]).analysis("gui.stubborn").spec
    sys.path.remove(str(folder))


@pytest.fixture
def store(workstation_store, tmp_path) -> Path:
    from workstation.dicom.index import index_paths
    from workstation.testing.phantoms import ct_phantom, write_volume_series

    hu, _ = ct_phantom((4, 16, 16), (2.0, 2.0, 2.0), seed=1)
    write_volume_series(tmp_path / "ct", hu, spacing=(2.0, 2.0, 2.0), series_uid=SERIES_UID)
    index_paths(workstation_store, [tmp_path / "ct"])
    return workstation_store


def test_a_trainer_ignoring_sigterm_is_killed_after_cancel_and_reported_so(
    qtbot, stubborn_spec, store
):
    job = TrainJob(
        stubborn_spec,
        store,
        [SERIES_UID],
        store / "models" / "stubborn",
        epochs=1,
        seed=0,
        resume=False,
        device="cpu",
        cancel_grace_s=0.2,
        kill_wait_s=0.3,
    )
    outcomes = []
    job.progress.connect(lambda _f, message: message == "stuck" and job.cancel())
    job.done.connect(outcomes.append)
    job.run()  # here, not on a thread: the signals above are delivered at once

    assert len(outcomes) == 1
    outcome = outcomes[0]
    assert not job.process.is_alive()
    assert job.process.exitcode == -signal.SIGKILL
    assert outcome.outcome == "cancelled"
    assert "so it was killed" in outcome.error and f"exit code {-signal.SIGKILL}" in outcome.error
    assert "None" not in outcome.error


def test_quitting_waits_a_bounded_time_and_leaves_no_training_process(qtbot, stubborn_spec, store):
    dialog = TrainingDialog(stubborn_spec, store, [SERIES_UID])
    qtbot.addWidget(dialog)
    dialog.device.setCurrentText("cpu")
    dialog.model_dir.setText(str(store / "models" / "stubborn"))
    dialog.start_button.click()
    job = dialog._job
    qtbot.waitUntil(lambda: dialog.status.text() == "stuck", timeout=60_000)
    job.kill_wait_s = 0.3
    dialog.shutdown(grace_s=0.2)  # what the application's aboutToQuit calls

    assert job.process is not None and not job.process.is_alive()
    assert job.process.exitcode == -signal.SIGKILL
    with qtbot.waitSignal(dialog.finished_training, timeout=10_000) as blocker:
        pass
    assert blocker.args[0].outcome == "cancelled"
    assert "killed" in blocker.args[0].error
