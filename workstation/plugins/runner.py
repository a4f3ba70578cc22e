"""The runner: checks a run request, picks the device, runs the analysis, writes and records.

`Runner.run()` never raises for anything the analysis does: it returns a `RunOutcome` whose
`outcome` is "succeeded", "failed", "cancelled", "timed out" or "refused" with a message. It
may be called from any thread (the GUI calls it from a QThread, with progress and log
callbacks; those callbacks run on the calling thread in isolated mode and on a runner thread
in-process). In-process runs are for tests and trusted quick analyses: a time-out or cancel
there is cooperative. Isolated runs (the GUI's choice) happen in a warm worker process that is
killed on time-out or an ignored cancel. A run on a bundle folder the user chose as weights
is isolated unless the caller asked for in-process explicitly: loading a bundle runs its code.

An analysis that raises a `UserFacingError` (the model helpers' `ModelError`s, `InputRefused`,
`ParameterError`) ends with that message alone (`RunOutcome.user_facing`); a `RunRefused` among
them is a refusal. Warnings logged during the run are kept in `RunOutcome.notes` and run.json.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
import uuid
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workstation.core.results import Result
from workstation.plugins.analysis_thread import AnalysisThread, retire_all
from workstation.plugins.context import (
    AnalysisInputs,
    Cancelled,
    LogCallback,
    ProgressCallback,
)
from workstation.plugins.declarations import (
    AnalysisSpec,
    InputKind,
    check_user_weights,
    is_package_resource,
    resolve_weights,
    weights_sha256,
)
from workstation.plugins.devices import DEFAULT_SLOTS, DeviceUnavailable, Slots, select_device
from workstation.plugins.errors import InputRefused, RunRefused
from workstation.plugins.manager import AnalysisEntry, Registry, load_registry
from workstation.plugins.run_store import RunRecord, RunStore
from workstation.plugins.version import API_VERSION
from workstation.plugins.worker import (
    CANCELLED,
    FAILED,
    REFUSED,
    SUCCEEDED,
    TIMED_OUT,
    IsolatedWorker,
    Job,
    JobOutcome,
    failure_outcome,
    run_job,
)

OUTCOMES = (SUCCEEDED, FAILED, CANCELLED, TIMED_OUT, REFUSED)


class CancelToken:
    """Handed to `Runner.run(cancel=...)`; `cancel()` from any thread (e.g. a GUI button)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()

    @property
    def event(self) -> threading.Event:
        return self._event


@dataclass
class RunOutcome:
    """What happened. `results` are set when `outcome == "succeeded"`; `outputs` are the files
    written (`OutputFile`s from workstation.outputs) when an output folder was given.
    `user_facing`: `error` is meant for the user as it is (a refusal, or a `UserFacingError` the
    analysis raised), so `traceback` (kept for the run record) need not be shown. `notes`: the
    warnings logged during the run (also in run.json's "notes"). `mode`: "isolated" or
    "in-process", as it ran. `error_types`: the class names of the exception the analysis
    raised, most specific first (e.g. ("CheckpointError", "ModelError", "UserFacingError"))."""

    run_id: str
    analysis_id: str
    outcome: str
    analysis_version: str = ""
    device: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    started_at: str = ""
    duration_s: float = 0.0
    results: list[Result] = field(default_factory=list)
    error: str | None = None
    traceback: str | None = None
    out_dir: str | None = None
    outputs: list[Any] = field(default_factory=list)
    indexed: list[str] = field(default_factory=list)
    weights: str | None = None
    demo_weights: bool = False
    user_facing: bool = False
    notes: list[str] = field(default_factory=list)
    mode: str = ""
    error_types: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.outcome == SUCCEEDED

    def message(self) -> str:
        """One line for a status bar or stderr."""
        if self.ok:
            return f"{self.analysis_id} succeeded in {self.duration_s:.2f} s on {self.device}"
        return f"{self.analysis_id} {self.outcome}: {self.error}"


class Runner:
    """Runs analyses from a `Registry`; keeps one warm isolated worker per concurrent job.

    `store_dir`: where run records go (None: not recorded), and the store the model helpers
    check trust in during a run, unless `trust_store_dir` names another (both None: the default
    store). `isolated`: the default mode; None (the default) runs in-process, except a run
    whose user-chosen weights are a bundle folder, which is isolated.
    Use as a context manager, or call `close()`, to stop the worker processes.
    """

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        store_dir: str | os.PathLike[str] | None = None,
        isolated: bool | None = None,
        slots: Slots | None = None,
        cancel_grace_s: float = 5.0,
        trust_store_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.registry = registry if registry is not None else load_registry()
        self.store_dir = Path(store_dir) if store_dir is not None else None
        self.trust_store_dir = Path(trust_store_dir) if trust_store_dir is not None else None
        self.isolated = isolated
        self.slots = slots or DEFAULT_SLOTS
        self.cancel_grace_s = cancel_grace_s
        self._idle_workers: list[IsolatedWorker] = []
        self._all_workers: list[IsolatedWorker] = []
        self._workers_lock = threading.Lock()
        self._idle_threads: list[AnalysisThread] = []  # in-process runs, see analysis_thread
        weakref.finalize(self, retire_all, self._idle_threads)  # a runner never closed
        self._run_store: RunStore | None = None  # kept open: closing checkpoints the WAL
        self._worker_gpus: tuple[str, ...] | None = None

    # --- public -----------------------------------------------------------------------------
    def run(
        self,
        analysis_id: str,
        inputs: AnalysisInputs | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        device: str = "auto",
        isolated: bool | None = None,
        timeout: float | None = None,
        seed: int = 0,
        weights: str | os.PathLike[str] | None = None,
        out_dir: str | os.PathLike[str] | None = None,
        on_progress: ProgressCallback | None = None,
        on_log: LogCallback | None = None,
        cancel: CancelToken | threading.Event | None = None,
        run_id: str | None = None,
    ) -> RunOutcome:
        """Run `analysis_id` once. Raises `UnknownAnalysis` for an id no plugin declares; every
        other problem is in the returned outcome (and the run record). `run_id` (from
        `new_run_id()`) lets the caller know the run's id before it starts. `isolated`: True or
        False as asked; None: the runner's `isolated`, and when that is None too, isolated
        exactly when `weights` is a bundle folder."""
        entry = self.registry.analysis(analysis_id)
        spec = entry.spec
        inputs = inputs or AnalysisInputs()
        isolated = self._choose_isolation(isolated, weights)
        notes: list[str] = []
        on_log = _keeping_warnings(on_log, notes)
        limit = spec.timeout if timeout is None else timeout
        if limit is not None and (math.isinf(limit) or limit <= 0):
            limit = None
        outcome = RunOutcome(
            run_id=run_id or new_run_id(),
            analysis_id=spec.id,
            outcome=REFUSED,
            analysis_version=spec.version,
            params=dict(params or {}),
            inputs=inputs.describe(),
            started_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            out_dir=str(out_dir) if out_dir is not None else None,
            notes=notes,
            mode="isolated" if isolated else "in-process",
        )
        clock = time.perf_counter()
        record = self._open_record(entry, outcome, isolated)
        try:
            try:
                outcome.params = spec.coerce_parameters(params)
                _check_inputs(entry, inputs)
                note = _check_modality(spec, inputs)
                if note:
                    notes.append(note)
                    on_log(logging.INFO, note)
                probe = self._probe_worker_gpus if isolated else None
                outcome.device = select_device(spec.id, spec.device, device, probe=probe)
                weights_path = resolve_weights(weights if weights is not None else spec.weights)
                if weights is not None:
                    weights_path = check_user_weights(weights_path)
                outcome.weights = str(weights_path) if weights_path else None
                outcome.demo_weights = (
                    weights_path is not None and is_package_resource(spec.weights)
                    if weights is None  # the declared weights themselves: no second look-up
                    else _uses_shipped_weights(spec.weights, weights_path)
                )
            except (RunRefused, DeviceUnavailable, MissingInput, WorkerProblem) as error:
                outcome.error = str(error)
                outcome.user_facing = True
                return outcome
            self._save(record, outcome, clock)
            job = Job(
                analysis_id=spec.id,
                entry=spec.entry,
                returns=spec.returns,
                params=outcome.params,
                inputs=inputs,
                device=outcome.device,
                scratch_dir="",
                weights=str(weights_path) if weights_path else None,
                seed=seed,
                timeout=limit,
                store_dir=_text_path(self.trust_store_dir or self.store_dir),
            )
            outcome.outcome = FAILED  # until the job says otherwise
            try:
                result = self._execute(job, isolated, limit, on_progress, on_log, cancel)
            except Exception as error:  # the host's own failure (worker start, disk full, ...)
                result = JobOutcome(
                    FAILED,
                    error=f"the host could not run it: {type(error).__name__}: {error}",
                    traceback=traceback.format_exc(),
                )
            outcome.outcome, outcome.results = result.status, result.results
            outcome.error, outcome.traceback = result.error, result.traceback
            outcome.user_facing = result.user_facing
            outcome.error_types = result.error_types
            outcome.duration_s = time.perf_counter() - clock
            if outcome.ok and out_dir is not None:
                self._write_outputs(entry, outcome, inputs, Path(out_dir), isolated, seed)
            return outcome
        finally:
            outcome.duration_s = time.perf_counter() - clock
            self._save(record, outcome, clock, final=True)

    def _choose_isolation(self, asked: bool | None, weights: str | os.PathLike[str] | None) -> bool:
        """As asked (the call, else the runner); when neither said, isolated exactly for a
        bundle folder the user chose: loading it runs the bundle's code and its `scripts/`."""
        if asked is None:
            asked = self.isolated
        if asked is None:
            return weights is not None and _is_bundle_folder(weights)
        return bool(asked)

    _stopped_at: float | None = None  # when stop_now() was last called (time.monotonic())
    _closed = False  # close() was called: analysis threads are retired, not kept

    def stop_now(self) -> None:
        """Give up waiting for cancelled analyses (a second Ctrl-C): isolated workers are
        killed, in-process ones abandoned; their runs end "cancelled" at once. Runs started
        later get the usual `cancel_grace_s`."""
        self._stopped_at = time.monotonic()
        with self._workers_lock:
            workers = list(self._all_workers)
        for worker in workers:
            worker.interrupt()

    def close(self) -> None:
        with self._workers_lock:
            self._closed = True
            workers, self._all_workers, self._idle_workers = self._all_workers, [], []
            threads = list(self._idle_threads)
            self._idle_threads.clear()
        retire_all(threads)
        for worker in workers:
            worker.close()
        if self._run_store is not None:
            self._run_store.close()
            self._run_store = None

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- running ----------------------------------------------------------------------------
    def _execute(self, job, isolated, limit, on_progress, on_log, cancel) -> JobOutcome:
        slot = self.slots.for_device(job.device)
        while not slot.acquire(timeout=0.1):
            if cancel is not None and cancel.is_set():
                return JobOutcome(CANCELLED, error="cancelled while waiting for a free device")
        scratch = tempfile.mkdtemp(prefix=f"workstation-{job.analysis_id}-")
        job.scratch_dir = scratch
        try:
            if isolated:
                return self._run_isolated(job, limit, on_progress, on_log, cancel)
            return self._run_in_process(job, limit, on_progress, on_log, cancel)
        finally:
            slot.release()
            shutil.rmtree(scratch, ignore_errors=True)

    def _run_in_process(self, job, limit, on_progress, on_log, cancel) -> JobOutcome:
        flag = threading.Event()
        box: dict[str, JobOutcome] = {}

        def target() -> None:
            try:
                box["outcome"] = JobOutcome(
                    SUCCEEDED, results=run_job(job, on_progress, on_log, cancel_flag=flag)
                )
            except Cancelled as error:
                box["outcome"] = JobOutcome(CANCELLED, error=str(error))
            except BaseException as error:
                box["outcome"] = failure_outcome(error, traceback.format_exc())

        thread = self._take_analysis_thread()
        started = time.monotonic()
        thread.submit(f"analysis-{job.analysis_id}", target)
        stop_reason: str | None = None
        stop_at: float | None = None
        while not thread.wait(0.05):
            now = time.monotonic()
            if stop_reason is None and cancel is not None and cancel.is_set():
                stop_reason, stop_at = CANCELLED, now
                flag.set()
            if stop_reason is None and limit is not None and now - started > limit:
                stop_reason, stop_at = TIMED_OUT, now
                flag.set()
            stopped_now = self._stopped_at is not None and self._stopped_at >= started
            grace = 0.0 if stopped_now else self.cancel_grace_s
            if stop_at is not None and now - stop_at > grace and thread.busy:
                thread.retire()  # never reused: it ends when the abandoned analysis does
                note = "; it is still running in this process (use isolated mode to stop it)"
                return JobOutcome(stop_reason, error=_stop_message(stop_reason, limit) + note)
        with self._workers_lock:
            if self._closed:
                thread.retire()  # finished after close(): nothing will run on it again
            else:
                self._idle_threads.append(thread)
        result = box["outcome"]
        user_cancelled = cancel is not None and cancel.is_set()
        if stop_reason is None and result.status == CANCELLED and limit and not user_cancelled:
            # it stopped itself at its deadline (ctx.check_cancelled) before this loop looked
            return JobOutcome(TIMED_OUT, error=_stop_message(TIMED_OUT, limit))
        if stop_reason is not None:  # whatever it raised once asked to stop (its own cancel error)
            raised = f" ({result.error})" if result.status == FAILED else ""  # kept, with its trace
            message = _stop_message(stop_reason, limit) + raised
            return JobOutcome(stop_reason, error=message, traceback=result.traceback)
        return result

    def _run_isolated(self, job, limit, on_progress, on_log, cancel) -> JobOutcome:
        worker = self._take_worker()
        try:
            return worker.run(
                job,
                on_progress=on_progress,
                on_log=on_log,
                cancel=cancel,
                timeout=limit,
                grace_s=self.cancel_grace_s,
            )
        finally:
            with self._workers_lock:
                self._idle_workers.append(worker)

    def _take_analysis_thread(self) -> AnalysisThread:
        with self._workers_lock:
            if self._idle_threads:
                return self._idle_threads.pop()
        return AnalysisThread()

    def _take_worker(self) -> IsolatedWorker:
        with self._workers_lock:
            if self._idle_workers:
                return self._idle_workers.pop()
            worker = IsolatedWorker()
            self._all_workers.append(worker)
            return worker

    def _probe_worker_gpus(self) -> tuple[str, ...]:
        """GPUs as the isolated worker sees them, asked once per Runner."""
        if self._worker_gpus is None:
            worker = self._take_worker()
            try:
                self._worker_gpus = worker.probe_gpus()
            except RuntimeError as error:
                raise WorkerProblem(f"could not list GPUs in the worker: {error}") from None
            finally:
                with self._workers_lock:
                    self._idle_workers.append(worker)
        return self._worker_gpus

    def warm_up(self) -> None:
        """Start one isolated worker ahead of the first run (the GUI calls this at start-up)."""
        worker = self._take_worker()
        worker.start()
        with self._workers_lock:
            self._idle_workers.append(worker)

    # --- outputs and records ----------------------------------------------------------------
    def _write_outputs(
        self, entry, outcome, inputs, out_dir: Path, isolated: bool, seed: int
    ) -> None:
        run_info = run_info_for(entry, outcome, inputs, isolated, seed)
        try:
            from workstation.outputs import write_results
        except ImportError as error:
            outcome.outcome = FAILED
            outcome.error = (
                f"results could not be written: workstation.outputs is unavailable ({error})"
            )
            return
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            outcome.outputs = list(write_results(outcome.results, out_dir, run_info))
        except Exception as error:
            outcome.outcome = FAILED
            outcome.error = f"writing results to {out_dir} failed: {type(error).__name__}: {error}"
            outcome.traceback = traceback.format_exc()
            return
        if not (out_dir / "run.json").exists():
            manifest = {**run_info, "outputs": [output_to_dict(o) for o in outcome.outputs]}
            (out_dir / "run.json").write_text(json.dumps(manifest, indent=2, default=str))
        if outcome.notes:
            _add_run_notes(out_dir / "run.json", outcome)
        if self.store_dir is not None:
            self._index_dicom_outputs(outcome)

    def _index_dicom_outputs(self, outcome: RunOutcome) -> None:
        paths = [p for p in (output_path(o) for o in outcome.outputs) if p and _is_dicom(p)]
        if not paths:
            return
        try:
            from workstation.dicom.index import index_paths
        except ImportError as error:
            outcome.error = f"outputs written but not indexed: DICOM index unavailable ({error})"
            return
        try:
            index_paths(self.store_dir, paths)
            outcome.indexed = [str(p) for p in paths]
        except Exception as error:
            outcome.error = f"outputs written but not indexed: {type(error).__name__}: {error}"

    def _open_record(
        self, entry: AnalysisEntry, outcome: RunOutcome, isolated: bool
    ) -> RunRecord | None:
        if self.store_dir is None:
            return None
        return RunRecord(
            run_id=outcome.run_id,
            analysis_id=entry.spec.id,
            started_at=outcome.started_at,
            analysis_version=entry.spec.version,
            plugin=entry.plugin.name,
            distribution=entry.plugin.distribution or "",
            mode="isolated" if isolated else "in-process",
        )

    def _save(
        self, record: RunRecord | None, outcome: RunOutcome, clock: float, final: bool = False
    ) -> None:
        if record is None:
            return
        record.parameters = outcome.params
        record.inputs = outcome.inputs
        record.device = outcome.device
        record.outcome = outcome.outcome if final else "running"
        record.duration_s = time.perf_counter() - clock if final else None
        record.error, record.traceback = outcome.error, outcome.traceback
        record.out_dir = outcome.out_dir
        record.outputs = [output_to_dict(o) for o in outcome.outputs]
        try:
            with self._workers_lock:
                if self._run_store is None:
                    self._run_store = RunStore(self.store_dir)
            self._run_store.save(record)
        except Exception as error:  # recording must not turn a good run into a crash
            print(
                f"workstation: warning: run {record.run_id} not recorded: {error}", file=sys.stderr
            )


class WorkerProblem(RuntimeError):
    """The isolated worker could not be asked about devices (it died while importing torch)."""


class MissingInput(ValueError):
    """The analysis needs an input the user did not give."""


def input_modality(inputs: AnalysisInputs) -> str:
    """The input series' DICOM modality ("CT", "MR", ...), or "" when it is not known (a file
    a reader plugin read without saying)."""
    volume = inputs.volume
    for ref in (inputs.series, volume.source if volume is not None else None):
        if ref is not None and getattr(ref, "modality", ""):
            return str(ref.modality).upper()
    if volume is not None:
        return str(volume.metadata.get("modality") or "").upper()
    return ""


def describe_input(inputs: AnalysisInputs) -> str:
    """How the message names the input: "series UID (path)", "series UID" or "PATH"."""
    series = inputs.series or (inputs.volume.source if inputs.volume is not None else None)
    uid = series.stack_id if series is not None else ""
    if uid and inputs.source_path:
        return f"series {uid} ({inputs.source_path})"
    if uid:
        return f"series {uid}"
    return inputs.source_path or "the input series"


def _check_modality(spec: AnalysisSpec, inputs: AnalysisInputs) -> str | None:
    """Refuse (`InputRefused`) a series of a modality the analysis is not made for, before any
    work. An unknown modality runs: the note returned says so."""
    if not spec.modalities or inputs.volume is None:
        return None
    takes = " or ".join(spec.modalities)
    modality = input_modality(inputs)
    if not modality:
        return (
            f"the modality of {describe_input(inputs)} is not known; {spec.id} is made for "
            f"{takes} series"
        )
    if not spec.takes_modality(modality):
        raise InputRefused(
            f"{spec.id} is made for {takes} series; {describe_input(inputs)} is {modality}. "
            f"Choose a {takes} series."
        )
    return None


def _keeping_warnings(on_log: LogCallback | None, notes: list[str]) -> LogCallback:
    """`on_log`, also keeping every warning once in `notes`."""

    def log(level: int, message: str) -> None:
        if level >= logging.WARNING and message not in notes:
            notes.append(message)
        if on_log is not None:
            on_log(level, message)

    return log


def _add_run_notes(manifest_path: Path, outcome: RunOutcome) -> None:
    """Append the run's notes to run.json's "notes" (after the writers' own) and refresh the
    manifest's entry among the outputs (its size and sha256 changed)."""
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        kept = list(manifest.get("notes") or [])
        manifest["notes"] = kept + [n for n in outcome.notes if n not in kept]
        manifest_path.write_text(json.dumps(manifest, indent=2, default=str) + "\n", "utf-8")
    except (OSError, ValueError) as error:
        outcome.error = f"notes not added to {manifest_path}: {error}"
        return
    for index, output in enumerate(outcome.outputs):
        if output_path(output) == manifest_path and hasattr(type(output), "of"):
            kind = getattr(output, "kind", "manifest")
            outcome.outputs[index] = type(output).of(manifest_path, kind)


def _check_inputs(entry: AnalysisEntry, inputs: AnalysisInputs) -> None:
    kinds = entry.spec.inputs
    if entry.spec.inputs_optional:
        return
    if InputKind.IMAGE_SERIES in kinds and inputs.volume is None:
        raise MissingInput(
            f"{entry.spec.id} needs an image series (give --series UID or --input PATH)"
        )
    if InputKind.PATIENT_RECORDS in kinds and inputs.patient_id is None and inputs.records is None:
        raise MissingInput(f"{entry.spec.id} needs a patient's records (give --patient ID)")


def run_info_for(
    entry: AnalysisEntry, outcome: RunOutcome, inputs: AnalysisInputs, isolated: bool, seed: int
) -> dict[str, Any]:
    """What `write_results(results, out_dir, run_info)` gets; JSON-ready except `source_series`
    (the input's `SeriesRef` or None) and `source_volume` (the input `Volume` or None).
    `weights.demo` is true when the run used the weights shipped inside the plugin's package
    (declared as "package:path"), by default or given by that file's path (a copy elsewhere is
    not); `weights.sha256` is their content hash. `versions.plugin_api` is the host's plugin
    API, `plugin_api_declared` the plugin's."""
    return {
        "run_id": outcome.run_id,
        "analysis": {
            "id": entry.spec.id,
            "title": entry.spec.title,
            "version": entry.spec.version,
            "plugin": entry.plugin.name,
            "distribution": entry.plugin.distribution,
            "distribution_version": entry.plugin.distribution_version,
        },
        "parameters": outcome.params,
        "inputs": outcome.inputs,
        "device": outcome.device,
        "mode": "isolated" if isolated else "in-process",
        "seed": seed,
        "weights": {
            "path": outcome.weights,
            "sha256": weights_sha256(outcome.weights),
            "demo": outcome.demo_weights,
        },
        "uses_model": entry.spec.weights is not None,
        "started_at": outcome.started_at,
        "duration_s": round(outcome.duration_s, 4),
        "versions": {
            "workstation": _version("workstation"),
            "plugin_api": API_VERSION,
            "plugin_api_declared": entry.plugin.api_version,
            "python": sys.version.split()[0],
        },
        "source_series": inputs.series,
        "source_volume": inputs.volume,
    }


def output_path(output: Any) -> Path | None:
    value = output.get("path") if isinstance(output, dict) else getattr(output, "path", None)
    return Path(value) if value is not None else None


def output_to_dict(output: Any) -> dict[str, Any]:
    if isinstance(output, dict):
        return {k: str(v) if isinstance(v, Path) else v for k, v in output.items()}
    if hasattr(output, "to_dict"):
        return output.to_dict()
    if hasattr(output, "__dataclass_fields__"):
        return {
            name: str(value) if isinstance(value, Path) else value
            for name, value in vars(output).items()
        }
    return {"path": str(output)}


def _is_bundle_folder(weights: str | os.PathLike[str]) -> bool:
    try:
        return resolve_weights(weights).is_dir()
    except Exception:  # the run refuses weights it cannot find, with its own message
        return False


def _text_path(path: Path | None) -> str | None:
    return str(path) if path is not None else None


def _is_dicom(path: Path) -> bool:
    if path.is_dir():
        return any(_is_dicom(child) for child in path.iterdir() if child.is_file())
    if path.suffix.lower() == ".dcm":
        return True
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def _stop_message(reason: str, limit: float | None) -> str:
    if reason == TIMED_OUT:
        return f"timed out after {limit:g} s"
    return "cancelled"


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def new_run_id() -> str:
    """A sortable, unique run id: UTC start time and a random suffix."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def _uses_shipped_weights(declared: str | None, chosen: Path | None) -> bool:
    """Results come from the plugin's shipped demo weights, whether by default or because the
    user picked that same file by its path (the label must not depend on how it was chosen)."""
    if chosen is None or not is_package_resource(declared):
        return False
    shipped = resolve_weights(declared)
    try:
        return shipped is not None and chosen.resolve() == shipped.resolve()
    except OSError:
        return False
