"""The training child process: `training.train()` runs here, not in the window's process.

Training in a thread of the window's process let the trainer's Python code (torch and MONAI
imports, the batch loop) hold the interpreter lock for up to half a second at a time, and a
crash in a native library would have taken the window with it. In a "spawn" child the window
only reads messages from a pipe: progress, log lines and the final `TrainOutcome`. A child that
dies leaves the last complete checkpoint in the model folder (every file there is replaced
atomically) and is reported with its exit code.

No Qt here: the child imports this module, and it must start fast.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

PROGRESS_INTERVAL_S = 0.05
"""At most 20 progress messages a second cross the pipe, however often the trainer reports."""


@dataclass(frozen=True)
class TrainRequest:
    """What the child needs; picklable. `spec` is the analysis's `AnalysisSpec`, sent whole so
    the child trains exactly what the window's registry offered."""

    spec: Any
    store_dir: str
    series_ids: tuple[str, ...]
    model_dir: str
    epochs: int
    seed: int
    resume: bool
    device: str


def child_main(conn: Any, cancel: Any, request: TrainRequest) -> None:  # pragma: no cover
    """Runs in the child: load the series, train, send ("progress", f, m), ("log", m) and
    finally ("done", TrainOutcome)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the window decides about cancelling
    lock = threading.Lock()
    last = {"time": 0.0, "message": ""}

    def send(*message: Any) -> None:
        with lock:
            conn.send(message)

    def progress(fraction: float, message: str) -> None:
        now = time.monotonic()
        if (
            fraction >= 1.0
            or message != last["message"]
            or now - last["time"] >= (PROGRESS_INTERVAL_S)
        ):
            last["time"], last["message"] = now, message
            send("progress", float(fraction), str(message))

    try:
        outcome = run_request(request, progress, lambda _level, m: send("log", str(m)), cancel)
    except BaseException as error:  # the host's own failure, said in the window
        import traceback

        from workstation.plugins.training import TrainOutcome

        outcome = TrainOutcome(
            request.spec.id,
            "failed",
            request.model_dir,
            error=f"{type(error).__name__}: {error}",
            traceback=traceback.format_exc(),
        )
    send("done", outcome)


def run_request(request: TrainRequest, on_progress: Any, on_log: Any, cancel: Any) -> Any:
    """Load the chosen series from the store and call `train()`; a series that cannot be
    loaded refuses the request, naming it, before anything is trained."""
    from workstation.plugins import inputs as input_loading
    from workstation.plugins.training import TrainingRefused, TrainOutcome, train_analysis

    volumes, refs = [], []
    for number, series_id in enumerate(request.series_ids, start=1):
        if cancel.is_set():
            return TrainOutcome(
                request.spec.id,
                "cancelled",
                request.model_dir,
                error="cancelled while loading the series; nothing was trained",
            )
        on_progress(0.0, f"loading series {number} of {len(request.series_ids)}")
        try:
            loaded = input_loading.from_series(request.store_dir, series_id)
        except input_loading.InputProblem as error:
            outcome = TrainOutcome(request.spec.id, "refused", request.model_dir)
            return outcome.refuse(TrainingRefused(str(error)))
        volumes.append(loaded.volume)
        refs.append(loaded.series)
    return train_analysis(
        request.spec,
        volumes,
        request.model_dir,
        series_refs=refs,
        epochs=request.epochs,
        seed=request.seed,
        resume=request.resume,
        device=request.device,
        on_progress=on_progress,
        on_log=on_log,
        cancel=cancel,
    )


@contextlib.contextmanager
def light_main() -> Iterator[None]:
    """Start a "spawn" child without re-running the window's __main__ script in it (slow for
    the GUI's start script, impossible for `python -c`): the child needs nothing from it.
    The analysis workers' swap, so both kinds of child share one lock."""
    from workstation.plugins.worker import light_main as swap_main  # not in the child's import

    with swap_main():
        yield
