"""The jobs panel: analyses run through the runner's isolated worker from a QThread, so the UI
never waits; each job shows progress, can be cancelled, and stays in the history with its
outcome and message."""

from __future__ import annotations

import os
import time
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class RunJob(QObject):
    """Calls `Runner.run` on a worker thread; progress and the outcome come back as signals."""

    progress = Signal(float, str)
    done = Signal(object)

    def __init__(
        self,
        runner: Any,
        analysis_id: str,
        inputs: Any,
        params: dict,
        device: str,
        *,
        weights: str | os.PathLike[str] | None = None,
        out_dir: str | os.PathLike[str] | None = None,
        run_id: str | None = None,
    ) -> None:
        super().__init__()
        from workstation.plugins.runner import CancelToken

        self.runner, self.analysis_id, self.inputs = runner, analysis_id, inputs
        self.params, self.device = params, device
        self.weights, self.out_dir, self.run_id = weights, out_dir, run_id
        self.cancel_token = CancelToken()

    PROGRESS_INTERVAL_S = 0.05
    """Progress reaches the UI at most 20 times a second: an analysis may report thousands of
    times a second and each report is an event the UI thread must handle."""

    def _report(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if (
            fraction >= 1.0
            or message != self._last_message
            or now - self._last_emit >= self.PROGRESS_INTERVAL_S
        ):
            self._last_emit, self._last_message = now, message
            self.progress.emit(float(fraction), str(message))

    def run(self) -> None:
        self._last_emit, self._last_message = 0.0, ""
        try:
            outcome = self.runner.run(
                self.analysis_id,
                self.inputs,
                params=self.params,
                device=self.device,
                weights=self.weights,
                out_dir=self.out_dir,
                isolated=True,
                on_progress=self._report,
                cancel=self.cancel_token,
                run_id=self.run_id,
            )
        except Exception as error:  # an unknown analysis id, a broken registry: shown, not raised
            outcome = error
        self.done.emit(outcome)


class JobsPanel(QWidget):
    """`results_ready(list)` carries the results of each successful run."""

    results_ready = Signal(list)
    finished = Signal(object)

    def __init__(self, store_dir: Any, registry: Any = None) -> None:
        super().__init__()
        from workstation.plugins.runner import Runner

        self.runner = (
            Runner(registry, store_dir=store_dir)
            if registry is not None
            else Runner(store_dir=store_dir)
        )
        self.status = QLabel("no analysis running")
        self.bar = QProgressBar()
        self.bar.setRange(0, 100)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.history = QListWidget()
        row = QHBoxLayout()
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addLayout(row)
        layout.addWidget(QLabel("History"))
        layout.addWidget(self.history, 1)
        self._thread: QThread | None = None
        self._job: RunJob | None = None
        self.selection: tuple[Any, dict] | None = None

    def set_selection(self, volume: Any, info: dict) -> None:
        self.selection = (volume, info)

    def running(self) -> bool:
        return self._thread is not None

    def start(
        self,
        analysis_id: str,
        inputs: Any,
        params: dict,
        device: str = "auto",
        *,
        weights: str | os.PathLike[str] | None = None,
        out_dir: str | os.PathLike[str] | None = None,
        run_id: str | None = None,
    ) -> None:
        """Run `analysis_id` on the runner's isolated worker. `weights`: a checkpoint or bundle
        the user chose (None: the analysis's own, e.g. its demo weights). `out_dir`: where the
        runner writes the results and run.json, indexing DICOM outputs into the store (None:
        results come back to the window only). `run_id`: the id the run is recorded under
        (from `new_run_id()`; None: the runner makes one), e.g. the name of `out_dir`."""
        if self._thread is not None:
            raise RuntimeError("an analysis is already running; wait for it or cancel it")
        self._thread = QThread(self)
        self._job = RunJob(
            self.runner,
            analysis_id,
            inputs,
            params,
            device,
            weights=weights,
            out_dir=out_dir,
            run_id=run_id,
        )
        self._job.moveToThread(self._thread)
        self._thread.started.connect(self._job.run)
        self._job.progress.connect(self._on_progress)
        self._job.done.connect(self._on_done)
        self.bar.setValue(0)
        self.cancel_button.setEnabled(True)
        self.status.setText(f"{analysis_id}: starting")
        self._thread.start()

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel_token.cancel()
            self.status.setText(self.status.text() + " (cancelling)")

    def _on_progress(self, fraction: float, message: str) -> None:
        self.bar.setValue(round(100 * max(0.0, min(1.0, fraction))))
        if message:
            self.status.setText(message)

    def _on_done(self, outcome: Any) -> None:
        if self._thread is not None:
            self._thread.quit()
            self._thread.wait()
        self._thread, self._job = None, None
        self.cancel_button.setEnabled(False)
        text = outcome.message() if hasattr(outcome, "message") else f"failed: {outcome}"
        self.status.setText(text)
        self.history.insertItem(0, text)
        if getattr(outcome, "ok", False):
            self.bar.setValue(100)
            self.results_ready.emit(list(outcome.results))
        self.finished.emit(outcome)

    def shutdown(self) -> None:
        self.cancel()
        if self._thread is not None:
            self._thread.quit()
            self._thread.wait(5000)
        self.runner.close()
