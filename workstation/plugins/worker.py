"""Running one analysis job, in this process or in a warm worker process that may die safely.

`run_job` is the single place an analysis function is called: it imports the entry, builds the
`RunContext`, seeds, calls, and checks what came back. `IsolatedWorker` runs `run_job` in a
separate process (multiprocessing "spawn", so no CUDA state or locks are inherited), kept warm
between runs so imports and model loading are paid once, and restarted after it dies. An
exception, a time-out, a cancel that is ignored, os.abort(), a segfault or an out-of-memory
kill become a failed run with its message; the host process is never touched.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import signal
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing import shared_memory
from pathlib import Path
from typing import Any

import numpy as np

from workstation.core.results import RESULT_TYPES, HeatMap, Label, LabelMap, Result
from workstation.core.volume import Geometry, Volume
from workstation.plugins.context import (
    AnalysisInputs,
    CancelFlag,
    Cancelled,
    LogCallback,
    ProgressCallback,
    RunContext,
    apply_seed,
)
from workstation.plugins.declarations import resolve_entry
from workstation.plugins.errors import RunRefused, UserFacingError
from workstation.plugins.run_scope import analysis_scope

SUCCEEDED, FAILED, CANCELLED, TIMED_OUT, REFUSED = (
    "succeeded",
    "failed",
    "cancelled",
    "timed out",
    "refused",
)


class ResultProblem(TypeError):
    """An analysis returned something the host cannot show or write."""


@dataclass
class Job:
    """Everything needed to run an analysis once; picklable, so it can go to the worker."""

    analysis_id: str
    entry: str
    returns: tuple[str, ...]
    params: dict[str, Any]
    inputs: AnalysisInputs
    device: str
    scratch_dir: str
    weights: str | None = None
    seed: int = 0
    timeout: float | None = None
    store_dir: str | None = None  # the run's store (trust is checked there); None: the default


@dataclass
class JobOutcome:
    """How a job ended. `user_facing`: `error` is a message meant for the user as it is (the
    analysis raised a `UserFacingError`), so the traceback is kept but not shown."""

    status: str
    results: list[Result] = field(default_factory=list)
    error: str | None = None
    traceback: str | None = None
    user_facing: bool = False
    error_types: tuple[str, ...] = ()  # the exception's class and its bases, most specific first


def exception_types(error: BaseException) -> tuple[str, ...]:
    """Names a caller can test without importing the plugin's modules (`evaluate` stops on
    any `ModelError`, which an isolated worker's exception cannot be checked against)."""
    return tuple(
        cls.__name__ for cls in type(error).__mro__ if cls not in (BaseException, Exception, object)
    )


def failure_outcome(error: BaseException, trace: str | None) -> JobOutcome:
    """What an exception from an analysis means: a `RunRefused` is a refusal and a
    `UserFacingError` a failure, each with its message alone; anything else is unexpected and
    keeps its type in the message. The traceback is kept in every case, for the run record."""
    if isinstance(error, UserFacingError):
        status = REFUSED if isinstance(error, RunRefused) else FAILED
        return JobOutcome(
            status,
            error=str(error) or type(error).__name__,
            traceback=trace,
            user_facing=True,
            error_types=exception_types(error),
        )
    return JobOutcome(
        FAILED,
        error=f"{type(error).__name__}: {error}",
        traceback=trace,
        error_types=exception_types(error),
    )


def run_job(
    job: Job,
    on_progress: ProgressCallback | None = None,
    on_log: LogCallback | None = None,
    cancel_flag: CancelFlag | None = None,
) -> list[Result]:
    """Import the entry, call it with a fresh `RunContext` and return its checked results."""
    function = resolve_entry(job.entry)
    with analysis_scope(job.store_dir, on_log):  # set up before the clock starts
        deadline = time.monotonic() + job.timeout if job.timeout else None
        ctx = RunContext(
            analysis_id=job.analysis_id,
            params=dict(job.params),
            inputs=job.inputs,
            device=job.device,
            scratch_dir=Path(job.scratch_dir),
            weights=Path(job.weights) if job.weights else None,
            seed=job.seed,
            on_progress=on_progress,
            on_log=on_log,
            cancel_flag=cancel_flag,
            deadline=deadline,
            store_dir=Path(job.store_dir) if job.store_dir else None,
        )
        apply_seed(job.seed)
        returned = function(ctx)
    return check_results(job, returned, warn=ctx.logger.warning)


def check_results(
    job: Job, returned: Any, warn: Callable[[str], None] | None = None
) -> list[Result]:
    """A list of core results, of declared kinds, image results on the input's grid.

    Label map values that `labels` does not name are not an error: the host names them
    "Label N" in the result itself (so the viewer, the SEG and labels.json agree) and `warn`s.
    """
    if returned is None:
        raise ResultProblem(f"{job.analysis_id} returned None; return a Result or a list of them")
    results = [returned] if isinstance(returned, Result) else list(returned)
    source: Volume | None = job.inputs.volume
    for result in results:
        if not isinstance(result, Result) or type(result).kind not in RESULT_TYPES:
            raise ResultProblem(
                f"{job.analysis_id} returned {type(result).__name__}; analyses return result types "
                f"from workstation.plugins.api ({', '.join(RESULT_TYPES)})"
            )
        if job.returns and result.kind not in job.returns:
            raise ResultProblem(
                f"{job.analysis_id} returned a {result.kind}, but declares only "
                f"returns={list(job.returns)}"
            )
        volume = getattr(result, "volume", None)
        if (
            source is not None
            and volume is not None
            and result.kind != "generated_series"
            and not volume.geometry.is_close(source.geometry)
        ):
            raise ResultProblem(
                f"{job.analysis_id}: {result.kind} {result.name!r} is not on the input's grid: "
                f"{grid_difference(volume.geometry, source.geometry)}; build it with "
                "ctx.volume.with_array(array) so it has the input's geometry and overlays exactly"
            )
        if isinstance(result, LabelMap):
            unnamed = name_missing_labels(result)
            if unnamed and warn is not None:
                warn(unnamed_labels_message(job.analysis_id, result, unnamed))
        for heat_map in _heat_maps(result):
            for problem in check_heat_map(heat_map):
                if warn is not None:
                    warn(f"{job.analysis_id}: heat map {heat_map.name!r}: {problem}")
    return results


def check_heat_map(heat_map: HeatMap) -> list[str]:
    """Problems with a heat map's colour map and units, one sentence each. A colour map the
    viewer does not have is replaced by its default in the result (so the viewer, run.json
    and a reopened run folder agree); units are left as given for the legend."""
    from workstation.outputs.heatmaps import colormap_name, ucum_units

    problems = []
    heat_map.colormap, note = colormap_name(heat_map.colormap)
    if note:
        problems.append(note)
    _, note = ucum_units(heat_map.units)
    if note:
        problems.append(note)
    return problems


def _heat_maps(result: Result) -> list[HeatMap]:
    if isinstance(result, HeatMap):
        return [result]
    explanation = getattr(result, "explanation", None)
    return [explanation] if isinstance(explanation, HeatMap) else []


def grid_difference(result: Geometry, source: Geometry, tol_mm: float = 1e-3) -> str:
    """Which of shape, spacing, origin and direction differ, with both values."""

    def fmt(values: tuple[float, ...]) -> str:
        return "(" + ", ".join(f"{v:g}" for v in values) + ")"

    parts = []
    if result.shape != source.shape:
        parts.append(f"shape [z, y, x] {result.shape} vs the input's {source.shape}")
    if not np.allclose(result.spacing, source.spacing, atol=1e-6):
        parts.append(
            f"spacing (x, y, z) {fmt(result.spacing)} mm vs the input's {fmt(source.spacing)} mm"
        )
    if not np.allclose(result.origin, source.origin, atol=tol_mm):
        parts.append(f"origin {fmt(result.origin)} mm vs the input's {fmt(source.origin)} mm")
    if not np.allclose(result.direction, source.direction, atol=1e-6):
        parts.append(f"direction {fmt(result.direction)} vs the input's {fmt(source.direction)}")
    return "; ".join(parts) or "the grids differ by more than 0.001 mm"


def unnamed_label_name(value: int) -> str:
    """The name a label value gets when nothing names it: the same in the host's results, the
    written files and the viewer's reopened label maps."""
    return f"Label {value}"


def name_missing_labels(result: LabelMap) -> list[int]:
    """Give the result a "Label N" entry for each value in the array that `labels` does not
    name; returns those values. `labels` is replaced by a new list, never changed in place: a
    plugin may return a module-level list, which in-process runs would otherwise grow."""
    named = {label.value for label in result.labels}
    present = set(nonzero_values(result.volume.array))
    missing = sorted(present - named)
    added = [Label(value, unnamed_label_name(value)) for value in missing]
    result.labels = sorted([*result.labels, *added], key=lambda label: label.value)
    return missing


def nonzero_values(array: np.ndarray) -> list[int]:
    """The non-zero values of a label map. Most maps hold a few small values: then the maximum
    and one comparison per value up to it (0.1 ms on a 128 x 128 x 64 uint8 map, against
    1.4 ms for a histogram, which first widens the map to 8-byte integers and was a run's
    largest host cost after the network); a histogram for other 8/16-bit maps, `np.unique`
    for the rest."""
    if array.size == 0:
        return []
    if array.dtype.kind in "ui":
        low, high = int(array.min()), int(array.max())
        if high - low <= _FEW_VALUES:
            return [v for v in range(low, high + 1) if v != 0 and (array == v).any()]
    if array.dtype in (np.uint8, np.uint16):
        counts = np.bincount(array.ravel(), minlength=1)
        return [int(v) for v in np.flatnonzero(counts) if v != 0]
    return [int(v) for v in np.unique(array) if v != 0]


_FEW_VALUES = 16  # above this span, one histogram beats a comparison per value


def unnamed_labels_message(analysis_id: str, result: LabelMap, values: list[int]) -> str:
    listed = ", ".join(str(v) for v in values)
    example = values[0]
    return (
        f"{analysis_id}: label map {result.name!r} has values {listed} that its `labels` do not "
        f"name; they are written as 'Label N'. Add Label({example}, \"name\") to `labels` "
        "(or remove those values)."
    )


def describe_exit(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        number = -exitcode
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = "unknown"
        hint = "; it may have run out of memory" if number == signal.SIGKILL else ""
        return f"worker died (signal {number}, {name}){hint}"
    return f"worker exited unexpectedly (exit code {exitcode})"


def _worker_main(conn: Any, cancel_event: Any) -> None:  # pragma: no cover - runs in the child
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the host decides about Ctrl-C

    def send(*message: Any) -> None:
        conn.send(message)

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "stop":
            return
        if message[0] == "probe":
            from workstation.plugins.devices import available_gpus

            try:
                send("gpus", available_gpus())
            except Exception as error:  # a broken CUDA install: report no GPU, say why
                send("gpus", (), f"{type(error).__name__}: {error}")
            continue
        try:
            job: Job = unpack(message[1], message[2])
        except Exception as error:
            send("error", FAILED, f"the worker could not receive the inputs: {error}", None)
            continue
        try:
            results = run_job(
                job,
                on_progress=lambda f, m: send("progress", f, m),
                on_log=lambda level, m: send("log", level, m),
                cancel_flag=cancel_event,
            )
        except Cancelled as error:
            send("error", CANCELLED, str(error), None)
            continue
        except BaseException as error:
            failed = failure_outcome(error, traceback.format_exc())
            send(
                "error",
                failed.status,
                failed.error,
                failed.traceback,
                failed.user_facing,
                failed.error_types,
            )
            continue
        try:
            send("done", *pack(results))
        except Exception as error:
            send("error", FAILED, f"results could not be sent back to the host: {error}", None)


class IsolatedWorker:
    """One warm worker process. `run()` may be called from any thread (one run at a time)."""

    POLL_S = 0.05

    def __init__(self) -> None:
        self._mp = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._conn: Any = None
        self._cancel: Any = None
        self._lock = threading.Lock()
        self.starts = 0

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the process if it is not running (after a crash, a kill or at first use)."""
        if self.alive:
            return
        self._discard()
        parent, child = self._mp.Pipe(duplex=True)
        self._cancel = self._mp.Event()
        self._process = self._mp.Process(
            target=_worker_main,
            args=(child, self._cancel),
            name="workstation-analysis-worker",
            daemon=True,
        )
        with light_main():
            self._process.start()
        child.close()
        self._conn = parent
        self.starts += 1

    def run(
        self,
        job: Job,
        on_progress: ProgressCallback | None = None,
        on_log: LogCallback | None = None,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
        grace_s: float = 5.0,
    ) -> JobOutcome:
        with self._lock:
            self.start()
            self._cancel.clear()
            blocks: list[tuple[str, int]] = []
            try:
                payload, blocks = pack(job)
                self._conn.send(("run", payload, blocks))
            except Exception as error:
                release(blocks)
                if not self.alive:
                    return JobOutcome(FAILED, error=describe_exit(self._process.exitcode))
                return JobOutcome(FAILED, error=f"inputs could not be sent to the worker: {error}")
            try:
                return self._wait(job, on_progress, on_log, cancel, timeout, grace_s)
            finally:
                release(blocks)  # normally already released by the worker; not if it died

    def _wait(self, job, on_progress, on_log, cancel, timeout, grace_s) -> JobOutcome:
        started = time.monotonic()
        cancel_sent: float | None = None
        while True:
            try:
                ready = self._conn.poll(self.POLL_S)
                message = self._conn.recv() if ready else None
            except (EOFError, OSError):
                message, ready = None, False
                self._process.join(1.0)
            if message is not None:
                kind = message[0]
                if kind == "progress" and on_progress:
                    on_progress(message[1], message[2])
                elif kind == "log" and on_log:
                    on_log(message[1], message[2])
                elif kind == "done":
                    try:
                        return JobOutcome(SUCCEEDED, results=unpack(message[1], message[2]))
                    except Exception as error:
                        return JobOutcome(FAILED, error=f"results could not be received: {error}")
                elif kind == "error":
                    status, text, trace = message[1], message[2], message[3]
                    user_facing = len(message) > 4 and bool(message[4])
                    error_types = tuple(message[5]) if len(message) > 5 else ()
                    if status == FAILED and cancel_sent is not None:
                        # raised once the worker was asked to stop (a library's own "cancelled"
                        # error); its message and traceback stay, in case it was a real crash
                        status, text = CANCELLED, f"cancelled ({text})"
                    user_cancelled = cancel is not None and cancel.is_set()
                    if status == CANCELLED and not user_cancelled and job.timeout:
                        # the analysis stopped itself at its deadline (ctx.check_cancelled)
                        status = TIMED_OUT
                        text = f"timed out after {_seconds(job.timeout)} s"
                    user_facing = user_facing and status in (FAILED, REFUSED)
                    return JobOutcome(
                        status,
                        error=text,
                        traceback=trace,
                        user_facing=user_facing,
                        error_types=error_types,
                    )
                continue
            if not self._process.is_alive():
                self._process.join(0.5)
                if cancel is not None and cancel.is_set():  # stopped on purpose after a cancel
                    return JobOutcome(CANCELLED, error="cancelled; its worker was stopped")
                return JobOutcome(FAILED, error=describe_exit(self._process.exitcode))
            now = time.monotonic()
            if cancel is not None and cancel.is_set() and cancel_sent is None:
                self._cancel.set()
                cancel_sent = now
            if cancel_sent is not None and now - cancel_sent > grace_s:
                self.kill()
                return JobOutcome(
                    CANCELLED,
                    error=f"cancelled; the analysis did not stop within {_seconds(grace_s)} s, "
                    "so its worker was stopped",
                )
            if timeout is not None and now - started > timeout:
                self.kill()
                return JobOutcome(TIMED_OUT, error=f"timed out after {_seconds(timeout)} s")

    def probe_gpus(self, timeout: float = 120.0) -> tuple[str, ...]:
        """The GPUs the worker's torch sees (imports torch there, not in the host)."""
        with self._lock:
            self.start()
            self._conn.send(("probe",))
            if not self._conn.poll(timeout):
                self.kill()
                raise RuntimeError(f"the worker did not list its GPUs within {timeout:g} s")
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                self._process.join(1.0)
                raise RuntimeError(describe_exit(self._process.exitcode)) from None
            return tuple(message[1])

    def interrupt(self) -> None:
        """Kill the process from another thread while `run()` waits on it: `run()` sees it die
        and returns (cancelled, when a cancel was sent); the next run starts a fresh one."""
        process = self._process
        if process is not None and process.is_alive():
            process.kill()

    def kill(self) -> None:
        """Stop the worker now; the next run starts a fresh one."""
        if self._process is not None and self._process.is_alive():
            self._process.kill()
            self._process.join(5.0)
        self._discard()

    def close(self) -> None:
        """Ask the worker to exit, killing it if it does not within a second."""
        if self._process is None:
            return
        if self._process.is_alive():
            with contextlib.suppress(Exception):
                self._conn.send(("stop",))
            self._process.join(1.0)
        self.kill()

    def _discard(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
        self._conn = None
        if self._process is not None and not self._process.is_alive():
            with contextlib.suppress(ValueError):
                self._process.close()
            self._process = None


SHARED_MEMORY_MIN_BYTES = 1 << 20


def pack(obj: Any) -> tuple[bytes, list[tuple[str, int]]]:
    """Pickle `obj` with large buffers (volume arrays) placed in shared memory blocks.

    A pipe copies a 150 MB CT volume slowly, in chunks; shared memory is one memcpy each way.
    The receiver copies each block out and unlinks it (`unpack`).
    """
    blocks: list[tuple[str, int]] = []

    def out_of_band(buffer: pickle.PickleBuffer) -> bool:
        raw = buffer.raw()
        if raw.nbytes < SHARED_MEMORY_MIN_BYTES:
            return True  # small: stays in the pickle
        block = shared_memory.SharedMemory(create=True, size=raw.nbytes)
        block.buf[: raw.nbytes] = raw
        blocks.append((block.name, raw.nbytes))
        block.close()
        return False

    try:
        payload = pickle.dumps(obj, protocol=5, buffer_callback=out_of_band)
    except BaseException:
        release(blocks)
        raise
    return payload, blocks


def unpack(payload: bytes, blocks: list[tuple[str, int]]) -> Any:
    buffers = []
    for name, size in blocks:
        block = shared_memory.SharedMemory(name=name)
        try:
            buffers.append(bytearray(block.buf[:size]))  # a private, writable copy
        finally:
            block.close()
            block.unlink()
    return pickle.loads(payload, buffers=buffers)


def release(blocks: list[tuple[str, int]]) -> None:
    """Unlink blocks the receiver did not take (it died, or sending failed)."""
    for name, _ in blocks:
        try:
            block = shared_memory.SharedMemory(name=name)
        except FileNotFoundError:
            continue
        block.close()
        block.unlink()


_MAIN_SWAP = threading.Lock()


@contextlib.contextmanager
def light_main() -> Iterator[None]:
    """Start a "spawn" child (an analysis worker, the window's training child) without
    re-running the host's __main__ script in it.

    "spawn" normally re-imports the parent's main module in the child: slow for the GUI's
    start script and impossible for `python -c` or stdin. The children need nothing from it,
    so while one starts, __main__ is a bare stand-in module. Every such start in the process
    goes through this one lock: two overlapping swaps could leave the stand-in in place.
    """
    with _MAIN_SWAP:
        real = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if real is not None:
                sys.modules["__main__"] = real


def _seconds(value: float) -> str:
    return f"{value:g}"
