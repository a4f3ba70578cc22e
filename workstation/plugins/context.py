"""What an analysis is given when it runs: its inputs, parameters, device and the host's services.

The same `RunContext` works in the host process and in the isolated worker: progress and log
messages go to a callback (streamed back to the host from the worker), cancellation is a flag the
analysis polls with `check_cancelled()`.
"""

from __future__ import annotations

import logging
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from workstation.core.refs import SeriesRef
from workstation.core.volume import Volume

if TYPE_CHECKING:  # pragma: no cover
    import torch

ProgressCallback = Callable[[float, str], None]
LogCallback = Callable[[int, str], None]


class Cancelled(Exception):
    """Raised by `RunContext.check_cancelled()` when the user cancelled or the time limit passed.
    Let it propagate: the host records the run as cancelled (or timed out)."""


class CancelFlag(Protocol):
    def is_set(self) -> bool: ...

    def set(self) -> None: ...


@dataclass
class AnalysisInputs:
    """What the user chose to run on. `volume` is set for image analyses, `series` when the volume
    came from an indexed series, `patient_id` when a patient was chosen; `records` is a callable
    that loads that patient's records when called (so image-only runs never load them)."""

    volume: Volume | None = None
    series: SeriesRef | None = None
    patient_id: str | None = None
    records: Callable[[], Any] | None = None
    source_path: str | None = None

    def describe(self) -> dict[str, Any]:
        """What run records keep: identifiers and shape, never pixel data or patient details."""
        out: dict[str, Any] = {}
        if self.series is not None:
            out["series_uid"] = self.series.stack_id
            out["study_uid"] = self.series.study_uid
        if self.source_path:
            out["path"] = self.source_path
        if self.volume is not None:
            out["shape"] = list(self.volume.array.shape)
            out["spacing"] = list(self.volume.spacing)
        if self.patient_id:
            out["patient_id"] = self.patient_id
        return out


class _ForwardingHandler(logging.Handler):
    def __init__(self, sink: LogCallback) -> None:
        super().__init__(logging.DEBUG)
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._sink(record.levelno, self.format(record))
        except Exception:  # a failing sink must not fail the analysis
            self.handleError(record)


@dataclass
class RunContext:
    """Handed to ``entry(ctx)``. Members:

    - `params`: the coerced parameter values (every declared parameter is present);
    - `inputs` (`volume`, `series`, `patient_id`, `records()` as shortcuts);
    - `device`: "cpu", "cuda", "cuda:N" or "mps"; `torch_device` gives a torch.device;
    - `progress(fraction, message)`, `cancelled()`, `check_cancelled()`;
    - `logger`: its messages stream to the host (the CLI's stderr, the GUI's run log); never
      log patient data;
    - `scratch_dir`: an empty folder for this run, deleted afterwards;
    - `weights`: the resolved weights path (None if the analysis declares none);
    - `seed`: already applied to `random`, numpy and (when imported) torch;
    - `store_dir`: the store this run uses (`workstation --store DIR`; None: the default store).
      The model helpers already check trust there when given no `store_dir`; pass it yourself
      only from threads the analysis starts, or to show it.
    """

    analysis_id: str
    params: dict[str, Any]
    inputs: AnalysisInputs
    device: str = "cpu"
    scratch_dir: Path = field(default_factory=Path)
    weights: Path | None = None
    seed: int = 0
    on_progress: ProgressCallback | None = None
    on_log: LogCallback | None = None
    cancel_flag: CancelFlag | None = None
    deadline: float | None = None  # time.monotonic() value
    store_dir: Path | None = None
    logger: logging.Logger = field(init=False)

    def __post_init__(self) -> None:
        self.logger = logging.getLogger(f"workstation.analysis.{self.analysis_id}")
        if self.logger.level != logging.DEBUG:  # setting it clears every logger's level cache
            self.logger.setLevel(logging.DEBUG)
        self.logger.propagate = False
        for handler in list(self.logger.handlers):
            if isinstance(handler, _ForwardingHandler):
                self.logger.removeHandler(handler)
        if self.on_log is not None:
            handler = _ForwardingHandler(self.on_log)
            handler.setFormatter(logging.Formatter("%(message)s"))
            self.logger.addHandler(handler)
        if self.cancel_flag is None:
            self.cancel_flag = threading.Event()

    # --- inputs ------------------------------------------------------------------------------
    @property
    def volume(self) -> Volume:
        if self.inputs.volume is None:
            raise ValueError(f"{self.analysis_id} was run without an image series")
        return self.inputs.volume

    @property
    def series(self) -> SeriesRef | None:
        return self.inputs.series

    @property
    def patient_id(self) -> str | None:
        return self.inputs.patient_id

    def records(self) -> Any:
        """Load the chosen patient's records (only when called)."""
        if self.inputs.records is None:
            raise ValueError(f"{self.analysis_id} was run without a patient's records")
        return self.inputs.records()

    # --- host services -----------------------------------------------------------------------
    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress: `fraction` in [0, 1] (clipped) and a short status-bar message."""
        if self.on_progress is not None:
            self.on_progress(min(1.0, max(0.0, float(fraction))), message)

    def cancelled(self) -> bool:
        """True once the user cancelled or the time limit passed; stop soon when it is."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            return True
        return bool(self.cancel_flag and self.cancel_flag.is_set())

    def check_cancelled(self) -> None:
        """Raise `Cancelled` if `cancelled()`; call it between slices, batches or epochs."""
        if self.cancelled():
            raise Cancelled(f"{self.analysis_id} was cancelled")

    @property
    def torch_device(self) -> torch.device:
        import torch

        return torch.device(self.device)

    def seed_everything(self) -> None:
        """Seed `random`, numpy and torch with `seed` (imports torch if it is not yet imported;
        the host already does this before the call when torch is loaded)."""
        import torch

        apply_seed(self.seed)
        seed_torch(torch, self.seed)


def apply_seed(seed: int) -> None:
    """Seed random and numpy always, torch only if something already imported it."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch = sys.modules.get("torch")
    if torch is not None:
        seed_torch(torch, seed)


def seed_torch(torch: Any, seed: int) -> None:
    """`torch.manual_seed` for the CPU and the accelerators this machine has. torch's own also
    queues a seeding call for every accelerator kind it was built for, each recording a stack
    trace: 0.5 ms of every run on a machine without them."""
    torch.random.default_generator.manual_seed(int(seed))
    for kind in ("cuda", "xpu", "mtia"):
        backend = getattr(torch, kind, None)
        if backend is None or getattr(backend, "_is_in_bad_fork", lambda: False)():
            continue  # as torch.manual_seed: no seeding in a child forked after CUDA started
        if backend.is_available():
            backend.manual_seed_all(int(seed))
    if torch.backends.mps.is_available():
        torch.mps.manual_seed(int(seed))
