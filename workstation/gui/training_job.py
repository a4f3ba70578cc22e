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
KILL_WAIT_S = 5.0
"""A child that outlives SIGTERM by this long (a trainer that ignores it, a hung native call)
is killed (SIGKILL); every file in the model folder is replaced atomically, so it is safe."""


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
        cancel_grace_s: float = CANCEL_GRACE_S,
        kill_wait_s: float = KILL_WAIT_S,
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
        self.cancel_grace_s, self.kill_wait_s = float(cancel_grace_s), float(kill_wait_s)
        self._terminated_at: float | None = None
        self._stopped_by: str | None = None  # "SIGTERM" or "SIGKILL", when the host stopped it
        self.process: Any = None  # the child, once started
        self._metrics_stamp: int | None = None
        self._last_epoch = 0

    def cancel(self, grace_s: float | None = None) -> None:
        """Stop after the current batch; the last complete checkpoint stays. A child still
        running `grace_s` (default `cancel_grace_s`) later is sent SIGTERM, and killed
        `kill_wait_s` after that (the application quitting asks for a short grace)."""
        self.cancel_event.set()
        now = time.monotonic()
        if self._cancelled_at is None:
            self._cancelled_at = now
        if grace_s is not None:  # only ever shortens the wait
            self.cancel_grace_s = min(self.cancel_grace_s, now - self._cancelled_at + grace_s)

    def kill(self) -> None:
        """Kill the child now (SIGKILL), e.g. when the application cannot wait any longer."""
        process = self.process
        if process is not None and process.is_alive():
            self._stopped_by = "SIGKILL"
            process.kill()

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
                self._stop_if_overdue(process)
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
            if process.is_alive():  # sent its outcome but does not exit: never left behind
                self.kill()
                process.join(timeout=10)
        if outcome is None:
            outcome = self._died(process.exitcode)
        elif outcome.outcome != "refused":
            self._check_epoch()
        return outcome

    def _stop_if_overdue(self, process: Any) -> None:
        """SIGTERM once the grace after Cancel is over, SIGKILL `kill_wait_s` after that."""
        if self._cancelled_at is None or not process.is_alive():
            return
        now = time.monotonic()
        if self._terminated_at is None:
            if now - self._cancelled_at > self.cancel_grace_s:
                self._terminated_at, self._stopped_by = now, "SIGTERM"
                process.terminate()
        elif now - self._terminated_at > self.kill_wait_s and self._stopped_by != "SIGKILL":
            self.kill()

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
        if exitcode is None:  # could not be stopped: said so, never reported as cancelled
            pid = getattr(self.process, "pid", None)
            return TrainOutcome(
                self.analysis_id,
                "failed",
                str(self.model_dir),
                epochs_done=int(rows[-1]["epoch"]) if rows else 0,
                error=f"the training process (pid {pid}) could not be stopped; it may still "
                "be running",
            )
        if self._stopped_by == "SIGKILL":
            reason = (
                f"it did not stop within {self.cancel_grace_s:g} s of Cancel nor "
                f"{self.kill_wait_s:g} s after SIGTERM, so it was killed (exit code {exitcode})"
            )
        elif self._stopped_by == "SIGTERM":
            reason = (
                f"it did not stop within {self.cancel_grace_s:g} s of Cancel, so it was "
                f"terminated (exit code {exitcode})"
            )
        return TrainOutcome(
            self.analysis_id,
            "cancelled" if stopped else "failed",
            str(self.model_dir),
            epochs_done=int(rows[-1]["epoch"]) if rows else 0,
            error=f"stopped after Cancel: {reason}" if stopped else reason,
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
