"""`workstation plugins [--json]`, `workstation plugins check TARGET` and `workstation run ...`.

Listing reads declarations only (no analysis code, torch or monai is imported). `run` prints
progress on stderr and results on stdout; its exit code says how the run ended:
0 succeeded, 1 failed, 2 refused or bad arguments, 124 timed out, 130 cancelled. A failure the
user can act on (an untrusted bundle, weights that do not fit, a series of another modality) is
one `workstation: error:` line; a traceback is printed only for an unexpected error (or with
--traceback), and is always kept in the run record (`workstation runs`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

from workstation.commands.common import CtrlC, fail, print_json, store_dir

EXIT_CODES = {"succeeded": 0, "failed": 1, "refused": 2, "timed out": 124, "cancelled": 130}


def register(subparsers: argparse._SubParsersAction) -> None:
    plugins = subparsers.add_parser(
        "plugins",
        help="list installed analysis plugins, or check one",
        description="List every analysis plugins contribute, with status ok / broken / refused.",
    )
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.set_defaults(func=_list)
    actions = plugins.add_subparsers(dest="plugins_command", metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="validate a plugin: declaration, API version, light import, a run on synthetic CT",
    )
    check.add_argument(
        "target",
        metavar="DIST_OR_PATH",
        help="installed distribution name, plugin project folder or module .py file",
    )
    check.add_argument(
        "--no-run", action="store_true", help="do not run analyses on synthetic input"
    )
    check.add_argument(
        "--json", action="store_true", dest="check_json", help="machine-readable output"
    )
    check.set_defaults(func=_check)

    run = subparsers.add_parser(
        "run",
        help="run an analysis on a series or file and write its results",
        description="Run an analysis headless. Progress goes to stderr; exit code 0 succeeded, "
        "1 failed, 2 refused, 124 timed out, 130 cancelled (Ctrl-C cancels the run and records "
        "it; a second Ctrl-C stops waiting for the analysis).",
    )
    run.add_argument("analysis", metavar="ANALYSIS_ID")
    source = run.add_mutually_exclusive_group()
    source.add_argument("--series", metavar="UID", help="an indexed series (UID or UID#N)")
    source.add_argument(
        "--input", metavar="PATH", help="a DICOM folder or a file a reader plugin reads"
    )
    run.add_argument("--patient", metavar="ID", help="the patient whose records the analysis uses")
    run.add_argument("--out", metavar="DIR", required=True, help="folder for results and run.json")
    run.add_argument(
        "--param",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="set a parameter (repeatable); see `workstation plugins` for names",
    )
    run.add_argument(
        "--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda, cuda:N or mps"
    )
    mode = run.add_mutually_exclusive_group()
    mode.add_argument(
        "--isolated",
        action="store_const",
        const=True,
        dest="isolated",
        help="run in a separate worker process (the default when --weights is a bundle folder)",
    )
    mode.add_argument(
        "--in-process",
        action="store_const",
        const=False,
        dest="isolated",
        help="run in this process, even with a bundle folder as --weights",
    )
    run.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help="time limit in seconds (default: the analysis's own; 0 = no limit)",
    )
    run.add_argument(
        "--weights",
        metavar="PATH",
        help="model weights to use instead of the plugin's own (bundle folder or checkpoint); "
        "a missing path is refused before the run starts",
    )
    run.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    run.add_argument("--json", action="store_true", help="print the outcome as JSON on stdout")
    run.add_argument(
        "--traceback",
        action="store_true",
        help="also print the traceback of an error meant for the user (unexpected errors "
        "always print theirs; `workstation runs` keeps both)",
    )
    run.set_defaults(func=_run)


# --- plugins ------------------------------------------------------------------------------------
def _list(args: argparse.Namespace) -> int:
    from workstation.plugins.manager import AUTOLOAD_ENV, autoload_disabled, load_registry

    registry = load_registry()
    if args.json:
        print_json(registry.to_dict())
        return 0
    if not registry.entries:
        print("no analyses installed")
    if autoload_disabled():
        print(
            f"note: {AUTOLOAD_ENV}={os.environ[AUTOLOAD_ENV]} is set, so installed plugins "
            "(entry points) are not loaded; unset it to list them"
        )
    for entry in registry.entries:
        plugin = entry.plugin
        dist = (
            f"{plugin.distribution} {plugin.distribution_version}"
            if plugin.distribution
            else plugin.name
        )
        status = entry.status if entry.status == "ok" else f"{entry.status}: {entry.error}"
        print(f"{entry.id}  {entry.spec.version}  [{status}]  {entry.spec.title}  ({dist})")
        inputs = ", ".join(kind.value for kind in entry.spec.inputs)
        if entry.spec.modalities:
            inputs += f" ({', '.join(entry.spec.modalities)})"
        returns = ", ".join(entry.spec.returns)
        print(f"    inputs: {inputs}; returns: {returns}; device: {entry.spec.device}")
        for p in entry.spec.parameters:
            bounds = _bounds(p)
            print(f"    --param {p.name}=<{p.type}>  default {p.default!r}{bounds}  {p.help}")
    for reader in registry.readers:
        print(
            f"reader {reader.spec.id}: {', '.join(reader.spec.extensions)}  ({reader.plugin.name})"
        )
    for plugin in registry.plugins:
        if plugin.status != "ok":
            where = (
                f" ({plugin.distribution} {plugin.distribution_version})"
                if plugin.distribution
                else ""
            )
            print(f"plugin {plugin.name}{where}: {plugin.status}: {plugin.error}")
    return 0


def _bounds(p: Any) -> str:
    if p.type == "choice":
        return f"  one of {', '.join(p.choices)}"
    if p.min is not None or p.max is not None:
        return f"  range [{'' if p.min is None else p.min}, {'' if p.max is None else p.max}]"
    return ""


def _check(args: argparse.Namespace) -> int:
    from workstation.plugins.check import check_plugin

    report = check_plugin(args.target, run=not args.no_run)
    if args.check_json:
        print_json(report.to_dict())
    else:
        for finding in report.findings:
            print(finding.line())
        print(f"{args.target}: {'passed' if report.passed else 'FAILED'}")
    return 0 if report.passed else 1


# --- run ----------------------------------------------------------------------------------------
def _run(args: argparse.Namespace) -> int:
    from workstation.plugins import inputs as input_loading
    from workstation.plugins.manager import UnknownAnalysis, load_registry
    from workstation.plugins.runner import CancelToken, Runner, new_run_id

    params, problem = _parse_params(args.param)
    if problem:
        return fail(problem, 2)
    store = store_dir(args)
    registry = load_registry()
    try:
        entry = registry.analysis(args.analysis)
    except UnknownAnalysis as error:
        return fail(str(error), 2)
    try:
        if args.series:
            inputs = input_loading.from_series(store, args.series)
        elif args.input:
            inputs = input_loading.from_path(args.input, registry)
        else:
            inputs = input_loading.AnalysisInputs()
        if args.patient:
            input_loading.with_patient(inputs, store, args.patient)
    except input_loading.InputProblem as error:
        return fail(str(error), 2)

    cancel = CancelToken()
    progress = _StderrProgress(entry.id)
    run_id = new_run_id()
    with Runner(registry, store_dir=store, isolated=args.isolated) as runner:
        box: dict[str, Any] = {}
        finished = threading.Event()

        def work() -> None:
            try:
                box["outcome"] = runner.run(
                    entry.id,
                    inputs,
                    params=params,
                    device=args.device,
                    timeout=args.timeout,
                    weights=args.weights,
                    seed=args.seed,
                    out_dir=args.out,
                    on_progress=progress.progress,
                    on_log=progress.log,
                    cancel=cancel,
                    run_id=run_id,
                )
            finally:
                finished.set()

        threading.Thread(target=work, name="workstation-run", daemon=True).start()
        with CtrlC(cancel, lambda: _quit_now(runner)):
            while not finished.wait(0.2):
                pass
        outcome = box.get("outcome")
    if outcome is None:  # the runner itself broke; its traceback is already on stderr
        return fail(f"{entry.id}: the run ended without an outcome (run {run_id})", 1)
    if args.json:
        print_json(_outcome_dict(outcome))
    else:
        for result in outcome.results:
            print(result.summary())
        for line in wrote_lines(outcome.outputs, args.out):
            print(line)
    if outcome.ok:
        print(outcome.message(), file=sys.stderr)
        if outcome.error:  # written but not indexed
            print(f"workstation: warning: {outcome.error}", file=sys.stderr)
        return 0
    if outcome.traceback and (args.traceback or not outcome.user_facing):
        print(outcome.traceback.rstrip(), file=sys.stderr)
    code = EXIT_CODES[outcome.outcome]
    if outcome.outcome == "cancelled" and cancel.is_set():
        return fail(f"{outcome.analysis_id} cancelled (run {outcome.run_id} recorded)", code)
    return fail(f"{outcome.analysis_id} {outcome.outcome}: {outcome.error}", code)


def wrote_lines(outputs: list[Any], out_dir: str | os.PathLike[str]) -> list[str]:
    """One "wrote" line per file, except a DICOM series' files in their own folder below
    `out_dir`: one line for the folder, `wrote DIR/ (48 DICOM files)`, where its first file
    was."""
    from workstation.plugins.runner import output_path

    top = Path(out_dir)
    paths = [output_path(o) or Path(str(o)) for o in outputs]
    folders: dict[Path, int] = {}
    for path in paths:
        if path.suffix.lower() == ".dcm" and path.parent != top:
            folders[path.parent] = folders.get(path.parent, 0) + 1
    lines, shown = [], set()
    for path in paths:
        folder = path.parent
        if folders.get(folder, 0) > 1 and path.suffix.lower() == ".dcm":
            if folder not in shown:
                shown.add(folder)
                lines.append(f"wrote {folder}{os.sep} ({folders[folder]} DICOM files)")
            continue
        lines.append(f"wrote {path}")
    return lines


def _parse_params(items: list[str]) -> tuple[dict[str, str], str | None]:
    params: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            return {}, f"--param {item!r}: expected NAME=VALUE"
        params[name.strip()] = value
    return params, None


def _outcome_dict(outcome: Any) -> dict[str, Any]:
    from workstation.plugins.runner import output_to_dict

    return {
        "run_id": outcome.run_id,
        "analysis_id": outcome.analysis_id,
        "analysis_version": outcome.analysis_version,
        "outcome": outcome.outcome,
        "error": outcome.error,
        "device": outcome.device,
        "parameters": outcome.params,
        "inputs": outcome.inputs,
        "duration_s": outcome.duration_s,
        "results": [r.summary() for r in outcome.results],
        "outputs": [output_to_dict(o) for o in outcome.outputs],
        "out_dir": outcome.out_dir,
        "mode": outcome.mode,
        "notes": list(outcome.notes),
    }


class _StderrProgress:
    """Progress and log lines on stderr (works in logs and terminals alike).

    Analyses report progress as often as they like, often without a message (a sliding window
    reports every patch). A line is printed when the message changes, or when the percentage has
    moved `STEP` points since the last line, or at 100 %; a line without a message repeats the
    last one. The percentage shown never goes down: a sub-step that restarts at 0 % (a second
    model pass) shows as the overall progress so far.
    """

    STEP = 10

    def __init__(self, analysis_id: str) -> None:
        self.analysis_id = analysis_id
        self._percent = -1  # last percentage printed
        self._message = ""  # last message printed
        self._lock = threading.Lock()

    def progress(self, fraction: float, message: str = "") -> None:
        try:
            percent = int(min(max(float(fraction), 0.0), 1.0) * 100)
        except (TypeError, ValueError):
            return
        message = (message or "").strip()
        with self._lock:
            shown = max(percent, self._percent, 0)
            new_message = bool(message) and message != self._message
            if not new_message:
                moved = shown - self._percent >= self.STEP
                finished = shown == 100 and self._percent < 100
                if not (moved or finished):
                    return
                message = self._message
            self._percent, self._message = shown, message
            print(f"[{shown:3d}%] {message}".rstrip(), file=sys.stderr, flush=True)

    def log(self, level: int, message: str) -> None:
        print(f"{logging.getLevelName(level).lower()}: {message}", file=sys.stderr, flush=True)


def _quit_now(runner: Any) -> None:
    """Second Ctrl-C: stop waiting for the analysis to notice. An isolated worker is killed; an
    in-process analysis is left behind (this process is about to exit). The run still ends
    "cancelled" and is recorded by the runner."""
    print("\nworkstation: quitting now", file=sys.stderr, flush=True)
    runner.stop_now()
