"""Training an analysis's model on series the user chose: `workstation train` and the GUI's job.

An analysis is trainable when its `AnalysisSpec` names a `train_entry` ("module:function"),
called as ``function(ctx: TrainContext) -> None``. The host gives it the chosen series as
volumes and a model folder; the plugin checks its input first (raising `TrainingRefused` before
any work when it cannot train on it), then trains epoch by epoch, calling
`ctx.save_checkpoint(...)`, `ctx.log_epoch(...)` and `ctx.save_samples(...)` after each epoch.
Every file in the model folder is replaced atomically, so a cancel, a crash or a killed
process leaves the last complete checkpoint, metrics and sample grid in place, and
``--resume`` carries on from it. torch is imported only inside the methods that need it.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
import threading
import time
import traceback
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from workstation.core.refs import SeriesRef
from workstation.core.volume import Volume
from workstation.plugins.context import (
    AnalysisInputs,
    Cancelled,
    LogCallback,
    ProgressCallback,
    RunContext,
)
from workstation.plugins.declarations import AnalysisSpec, resolve_entry
from workstation.plugins.devices import DeviceUnavailable, select_device
from workstation.plugins.manager import Registry

CHECKPOINT_FILE = "checkpoint.pt"
METRICS_FILE = "metrics.json"
SAMPLES_FILE = "samples.png"
TRAINING_FILE = "training.json"
MODEL_FILE = "model.pt"
"""THE file a trainer writes into the model folder for the analysis to read as its weights
(`TrainContext.model_path`): the workstation offers a trained model (under Weights, and
"Generate from this model") only when this file is there."""


# Why a request was refused: the command line and the training window each say what to do
# about it in their own words (a flag, a tick box), keyed by these codes.
REFUSED_INPUT = "input"  # the chosen series cannot be trained on (the plugin's own checks)
REFUSED_NO_SERIES = "no_series"
REFUSED_EPOCHS = "epochs"  # too few epochs asked for (none, or no more than a checkpoint has)
REFUSED_CHECKPOINT_EXISTS = "checkpoint_exists"  # a new model asked for where one is kept
REFUSED_NO_CHECKPOINT = "no_checkpoint"  # resume asked for where nothing is kept
REFUSED_DEVICE = "device"  # the device asked for is not here

CLI_HINTS = {
    REFUSED_NO_SERIES: "give --series UID ... or --input PATH ...",
    REFUSED_EPOCHS: "--epochs is the total, counting the epochs already trained",
    REFUSED_CHECKPOINT_EXISTS: "pass --resume to carry on from it, or choose another --out folder",
    REFUSED_NO_CHECKPOINT: "leave out --resume to start a new model there",
    REFUSED_DEVICE: "choose another --device",
}
"""What a user of `workstation train` can do about each refusal (flags named)."""


class TrainingRefused(ValueError):
    """Raise from a train entry, before any work, when the chosen series cannot be trained on
    (too few slices, mixed modalities or sizes, a request too big for the device). The model
    folder is left exactly as it was.

    `message` says what is wrong in words that name no command-line flag or button (the CLI and
    the training window add their own advice); `reason` is one of the ``REFUSED_*`` codes
    (default `REFUSED_INPUT`); `cli_hint` overrides the command line's advice for it.
    """

    def __init__(self, message: str, reason: str = REFUSED_INPUT, cli_hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.cli_hint = CLI_HINTS.get(reason, "") if cli_hint is None else cli_hint

    def __reduce__(self):  # keeps reason and hint when it crosses a process boundary
        return (type(self), (self.message, self.reason, self.cli_hint))


class NotTrainable(LookupError):
    """The analysis declares no `train_entry`."""


@dataclass
class TrainContext(RunContext):
    """Handed to ``train_entry(ctx)``. Everything `RunContext` has (device, `progress`,
    `cancelled`/`check_cancelled`, `logger`, `scratch_dir`, `seed`, `weights`) plus:

    - `volumes`: the chosen series as `Volume`s, in the order given; `series_refs` their refs;
    - `model_dir`: the folder the model, checkpoints, metrics and sample grids go to;
    - `epochs`: how many epochs the user asked for in total (a resumed run counts the epochs
      already done); `resume`: carry on from `load_checkpoint()`.

    training.json (what was trained on, with which seed and device) is written with the first
    checkpoint, metrics or samples: a request the plugin refuses leaves the folder as it was.
    """

    volumes: list[Volume] = field(default_factory=list)
    series_refs: list[SeriesRef | None] = field(default_factory=list)
    model_dir: Path = field(default_factory=Path)
    epochs: int = 1
    resume: bool = False
    _first_write: Callable[[], Any] | None = field(default=None, repr=False)

    @property
    def checkpoint_path(self) -> Path:
        return self.model_dir / CHECKPOINT_FILE

    @property
    def model_path(self) -> Path:
        """Where to write the trained model (`MODEL_FILE` in `model_dir`), the file the
        analysis reads with ``--weights``; the workstation offers the model only when it is
        there."""
        return self.model_dir / MODEL_FILE

    def _writing(self) -> None:
        if self._first_write is not None:
            first, self._first_write = self._first_write, None
            first()

    def save_checkpoint(self, state: dict[str, Any], epoch: int) -> Path:
        """Write `state` (tensors, numbers, strings, lists, dicts) with `epoch` as the last
        complete epoch, atomically: the previous checkpoint stays until the new one is whole."""
        import torch

        self._writing()
        payload = {**state, "epoch": int(epoch)}
        return atomic_write(self.checkpoint_path, lambda handle: torch.save(payload, handle))

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The last saved checkpoint (with its "epoch"), or None when there is none."""
        if not self.checkpoint_path.is_file():
            return None
        import torch

        return torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)

    def log_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        """Record one epoch's metrics (e.g. generator and discriminator losses) in
        metrics.json, a list of ``{"epoch": N, ...}`` the GUI draws as curves."""
        self._writing()
        history = read_metrics(self.model_dir)
        history = [row for row in history if row.get("epoch", 0) < epoch]
        history.append({"epoch": int(epoch), **{k: float(v) for k, v in metrics.items()}})
        text = json.dumps(history, indent=1)
        atomic_write(self.model_dir / METRICS_FILE, lambda h: h.write(text.encode()))
        summary = ", ".join(f"{k} {float(v):.4g}" for k, v in metrics.items())
        self.logger.info("epoch %d: %s", epoch, summary)

    def save_samples(
        self, images: Sequence[np.ndarray] | np.ndarray, value_range: tuple[float, float]
    ) -> Path:
        """Write 2D images as one grid PNG (samples.png), grey levels from `value_range`."""
        self._writing()
        grid = sample_grid(np.asarray(images, dtype=np.float32), value_range)
        return atomic_write(self.model_dir / SAMPLES_FILE, lambda h: h.write(png_bytes(grid)))


@dataclass
class TrainOutcome:
    """How a training job ended: outcome "succeeded", "failed", "cancelled" or "refused".

    A refusal has `reason` (a ``REFUSED_*`` code), `error` (what is wrong, naming no flag or
    button) and `cli_hint` (what to do about it on the command line; the GUI has its own)."""

    analysis_id: str
    outcome: str
    model_dir: str
    device: str = ""
    epochs_done: int = 0
    duration_s: float = 0.0
    error: str | None = None
    traceback: str | None = None
    reason: str | None = None
    cli_hint: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "succeeded"

    def message(self) -> str:
        if self.ok:
            return (
                f"{self.analysis_id} trained to epoch {self.epochs_done} in "
                f"{self.duration_s:.1f} s on {self.device}; model in {self.model_dir}"
            )
        return f"training {self.analysis_id} {self.outcome}: {self.error}"

    def refuse(self, refusal: TrainingRefused) -> TrainOutcome:
        self.outcome, self.error = "refused", refusal.message
        self.reason, self.cli_hint = refusal.reason, refusal.cli_hint
        return self


def train(
    registry: Registry,
    analysis_id: str,
    volumes: Sequence[Volume],
    model_dir: str | os.PathLike[str],
    **options: Any,
) -> TrainOutcome:
    """`train_analysis` for `analysis_id` as declared in `registry`; raises `UnknownAnalysis`
    for an id no plugin declares and `NotTrainable` for one without a train entry."""
    return train_analysis(registry.analysis(analysis_id).spec, volumes, model_dir, **options)


def train_analysis(
    spec: AnalysisSpec,
    volumes: Sequence[Volume],
    model_dir: str | os.PathLike[str],
    *,
    series_refs: Sequence[SeriesRef | None] | None = None,
    epochs: int = 10,
    seed: int = 0,
    resume: bool = False,
    device: str = "auto",
    on_progress: ProgressCallback | None = None,
    on_log: LogCallback | None = None,
    cancel: threading.Event | Any | None = None,
) -> TrainOutcome:
    """Run `spec`'s train entry in this thread (the spec alone is enough: a child process or a
    pipeline need no registry). Never raises for what the plugin does; raises `NotTrainable`
    when `spec` declares no train entry. A run that does not succeed and saved nothing leaves
    `model_dir` as it was (a folder that was not there is not left behind)."""
    if not spec.train_entry:
        raise NotTrainable(f"{spec.id} cannot be trained (it declares no train_entry)")
    model_dir = Path(model_dir)
    outcome = TrainOutcome(spec.id, "refused", str(model_dir))
    clock = time.perf_counter()
    try:
        outcome.device = select_device(spec.id, spec.device, device)
        _check_request(model_dir, volumes, epochs, resume)
    except DeviceUnavailable as error:
        return outcome.refuse(TrainingRefused(str(error), REFUSED_DEVICE))
    except TrainingRefused as refusal:
        return outcome.refuse(refusal)
    created = _missing_folders(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"workstation-train-{spec.id}-"))
    ctx = TrainContext(
        analysis_id=spec.id,
        params={},
        inputs=AnalysisInputs(volume=volumes[0] if volumes else None),
        device=outcome.device,
        scratch_dir=scratch,
        seed=seed,
        on_progress=on_progress,
        on_log=on_log,
        cancel_flag=cancel if cancel is not None else threading.Event(),
        volumes=list(volumes),
        series_refs=list(series_refs or [v.source for v in volumes]),
        model_dir=model_dir,
        epochs=epochs,
        resume=resume,
    )
    ctx._first_write = lambda: _write_training_info(ctx, spec.version, outcome.device)
    ctx.seed_everything()
    try:
        function: Callable[[TrainContext], Any] = resolve_entry(spec.train_entry)
        function(ctx)
        ctx._writing()  # a plugin that saved nothing through ctx still gets its training.json
        outcome.outcome = "succeeded"
    except TrainingRefused as refusal:
        outcome.refuse(refusal)
    except Cancelled as error:
        outcome.outcome, outcome.error = "cancelled", str(error) or "cancelled"
    except Exception as error:
        outcome.outcome = "failed"
        outcome.error = f"{type(error).__name__}: {error}"
        outcome.traceback = traceback.format_exc()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        outcome.duration_s = time.perf_counter() - clock
        metrics = read_metrics(model_dir)
        outcome.epochs_done = int(metrics[-1]["epoch"]) if metrics else 0
        if outcome.outcome != "succeeded":  # refused, failed (its entry would not import), ...
            _remove_if_empty(created)  # folders this call made and nothing was saved in
    return outcome


def _check_request(model_dir: Path, volumes: Sequence[Volume], epochs: int, resume: bool) -> None:
    if not volumes:
        raise TrainingRefused("no series given to train on", REFUSED_NO_SERIES)
    if epochs < 1:
        raise TrainingRefused(f"epochs must be 1 or more, got {epochs}", REFUSED_EPOCHS)
    has_checkpoint = (model_dir / CHECKPOINT_FILE).is_file()
    if resume and not has_checkpoint:
        raise TrainingRefused(
            f"{model_dir} has no {CHECKPOINT_FILE} to resume from", REFUSED_NO_CHECKPOINT
        )
    if not resume and has_checkpoint:
        raise TrainingRefused(
            f"{model_dir} already holds a checkpoint",
            REFUSED_CHECKPOINT_EXISTS,
        )


def _missing_folders(folder: Path) -> list[Path]:
    """`folder` and those of its parents that do not exist yet, deepest first."""
    missing = []
    for candidate in (folder, *folder.absolute().parents):
        if candidate.exists():
            break
        missing.append(candidate)
    return missing


def _remove_if_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first; stops at the first one something was put in
        try:
            folder.rmdir()
        except OSError:
            return


def _write_training_info(ctx: TrainContext, version: str, device: str) -> None:
    """training.json: this run's facts; a resumed model keeps the earlier runs' under
    "earlier" (oldest first), so what the model was first trained on is never lost."""
    info: dict[str, Any] = {
        "analysis_id": ctx.analysis_id,
        "analysis_version": version,
        "series": [ref.stack_id if ref is not None else None for ref in ctx.series_refs],
        "epochs": ctx.epochs,
        "seed": ctx.seed,
        "resume": ctx.resume,
        "device": device,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path = ctx.model_dir / TRAINING_FILE
    if ctx.resume and path.is_file():
        try:
            before = json.loads(path.read_text())
        except (OSError, ValueError):
            before = None
        if isinstance(before, dict):
            earlier = before.pop("earlier", [])
            info["earlier"] = [*(earlier if isinstance(earlier, list) else []), before]
    text = json.dumps(info, indent=2)
    atomic_write(path, lambda h: h.write(text.encode()))


def read_metrics(model_dir: str | os.PathLike[str]) -> list[dict[str, float]]:
    """The per-epoch metrics written so far (empty when none)."""
    path = Path(model_dir) / METRICS_FILE
    if not path.is_file():
        return []
    return list(json.loads(path.read_text()))


def atomic_write(path: Path, write: Callable[[Any], Any]) -> Path:
    """Write `path` through `write(binary_handle)` into a temporary file beside it, flush it to
    disk, then rename it over `path`: readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".part"
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it private; model folders are shared
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def sample_grid(images: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Tile [n, h, w] images into a near-square uint8 grid with 2-pixel black gutters."""
    if images.ndim != 3 or len(images) == 0:
        raise ValueError(f"sample images must be [n, height, width], got shape {images.shape}")
    low, high = value_range
    scaled = np.clip((images - low) / max(high - low, 1e-9), 0.0, 1.0) * 255.0
    n, h, w = scaled.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    gap = 2
    grid = np.zeros((rows * (h + gap) + gap, cols * (w + gap) + gap), np.uint8)
    for i, image in enumerate(scaled):
        r, c = divmod(i, cols)
        top, left = gap + r * (h + gap), gap + c * (w + gap)
        grid[top : top + h, left : left + w] = np.rint(image).astype(np.uint8)
    return grid


def png_bytes(grey: np.ndarray) -> bytes:
    """An 8-bit greyscale PNG of a 2D uint8 array (no imaging library needed)."""
    height, width = grey.shape
    raw = b"".join(b"\x00" + grey[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )
