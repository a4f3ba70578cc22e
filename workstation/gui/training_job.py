"""A training job for the GUI: `training.train()` runs in a child process (see
`training_process`) watched from a worker thread, so the window keeps drawing while a model
trains. What the user watches (progress, log lines, each finished epoch's metrics and sample
grid) comes back as signals.

Epochs are noticed from the model folder itself: `TrainContext.log_epoch` writes metrics.json
(atomically) after each epoch's checkpoint and sample grid, so a new last epoch there means all
three are whole on disk.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from workstation.gui.training_process import TrainRequest, child_main, light_main

CANCEL_GRACE_S = 60.0
"""A child still busy this long after Cancel is stopped; the last whole checkpoint stays."""


class TrainJob(QObject):
    """Runs one training request; `done(TrainOutcome)` always comes, exactly once."""

    progress = Signal(float, str)
    log = Signal(str)
    epoch_finished = Signal(list, bytes)  # metrics rows so far, samples.png bytes (may be b"")
    done = Signal(object)

    def __init__(
        self,
        spec: Any,
        store_dir: str | os.PathLike[str],
        series_ids: list[str],
        model_dir: str | os.PathLike[str],
        *,
        epochs: int,
        seed: int,
        resume: bool,
        device: str,
    ) -> None:
        super().__init__()
        import multiprocessing

        self.request = TrainRequest(
            spec=spec,
            store_dir=str(store_dir),
            series_ids=tuple(series_ids),
            model_dir=str(model_dir),
            epochs=int(epochs),
            seed=int(seed),
            resume=bool(resume),
            device=str(device),
        )
        self.analysis_id, self.model_dir = spec.id, Path(model_dir)
        self._mp = multiprocessing.get_context("spawn")  # no CUDA state or locks inherited
        self.cancel_event = self._mp.Event()
        self._cancelled_at: float | None = None
        self.process: Any = None  # the child, once started
        self._metrics_stamp: int | None = None
        self._last_epoch = 0

    def cancel(self) -> None:
        """Stop after the current batch; the last complete checkpoint stays."""
        self.cancel_event.set()
        if self._cancelled_at is None:
            self._cancelled_at = time.monotonic()

    # --- worker thread ----------------------------------------------------------------------
    def run(self) -> None:
        from workstation.plugins.training import TrainOutcome

        try:
            outcome = self._run()
        except Exception as error:  # the host's own failure: shown in the dialog, never raised
            problem = f"{type(error).__name__}: {error}"
            outcome = TrainOutcome(self.analysis_id, "failed", str(self.model_dir), error=problem)
        self.done.emit(outcome)

    def _run(self) -> Any:
        receiver, sender = self._mp.Pipe(duplex=False)
        process = self._mp.Process(
            target=child_main,
            args=(sender, self.cancel_event, self.request),
            name=f"train-{self.analysis_id}",
            daemon=True,
        )
        self.process = process
        if self.request.resume:
            self._check_epoch()  # the curves start with the epochs already trained
        else:
            self._metrics_stamp = self._stamp()  # a stale metrics.json is not this run's epoch
        with light_main():
            process.start()
        sender.close()
        outcome = None
        try:
            while outcome is None:
                if self._cancelled_at is not None and (
                    time.monotonic() - self._cancelled_at > CANCEL_GRACE_S
                ):
                    process.terminate()
                if not receiver.poll(0.1):
                    if not process.is_alive() and not receiver.poll(0):
                        break
                    continue
                try:
                    message = receiver.recv()
                except (EOFError, OSError):
                    break
                outcome = self._handle(message)
        finally:
            receiver.close()
            process.join(timeout=30)
        if outcome is None:
            outcome = self._died(process.exitcode)
        elif outcome.outcome != "refused":
            self._check_epoch()
        return outcome

    def _handle(self, message: tuple) -> Any:
        kind = message[0]
        if kind == "done":
            return message[1]
        if kind == "progress":
            self.progress.emit(float(message[1]), str(message[2]))
        elif kind == "log":
            self.log.emit(str(message[1]))
        self._check_epoch()
        return None

    def _died(self, exitcode: int | None) -> Any:
        from workstation.plugins.training import TrainOutcome, read_metrics
        from workstation.plugins.worker import describe_exit

        self._check_epoch()
        try:
            rows = read_metrics(self.model_dir)
        except (OSError, ValueError):
            rows = []
        stopped = self._cancelled_at is not None
        reason = describe_exit(exitcode).replace("worker", "the training process")
        return TrainOutcome(
            self.analysis_id,
            "cancelled" if stopped else "failed",
            str(self.model_dir),
            epochs_done=int(rows[-1]["epoch"]) if rows else 0,
            error=f"stopped after Cancel ({reason})" if stopped else reason,
        )

    def _stamp(self) -> int | None:
        from workstation.plugins.training import METRICS_FILE

        try:
            return (self.model_dir / METRICS_FILE).stat().st_mtime_ns
        except OSError:
            return None

    def _check_epoch(self) -> None:
        """Emit `epoch_finished` when metrics.json has a new last epoch."""
        from workstation.plugins.training import SAMPLES_FILE, read_metrics

        stamp = self._stamp()
        if stamp is None or stamp == self._metrics_stamp:
            return
        self._metrics_stamp = stamp
        try:
            rows = read_metrics(self.model_dir)
        except (OSError, ValueError):
            return
        if not rows or int(rows[-1].get("epoch", 0)) == self._last_epoch:
            return
        self._last_epoch = int(rows[-1]["epoch"])
        try:
            samples = (self.model_dir / SAMPLES_FILE).read_bytes()
        except OSError:
            samples = b""
        self.epoch_finished.emit(rows, samples)
