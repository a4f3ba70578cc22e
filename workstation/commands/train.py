"""`workstation train ANALYSIS_ID --series UID ... --out MODEL_DIR [--epochs N] [--seed S]
[--resume]`: train an analysis's model on indexed series (or DICOM folders / files).

Progress goes to stderr. The model folder gets a checkpoint, metrics.json and samples.png after
every epoch; Ctrl-C cancels after the current batch and keeps the last complete checkpoint, and
``--resume`` carries on from it. Exit codes: 0 succeeded, 1 failed, 2 refused or bad arguments,
130 cancelled.
"""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Any

from workstation.commands.common import CtrlC, fail, store_dir

EXIT_CODES = {"succeeded": 0, "failed": 1, "refused": 2, "cancelled": 130}


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train",
        help="train an analysis's model on chosen series",
        description="Train a trainable analysis (see `workstation plugins`) on series. Exit "
        "code 0 succeeded, 1 failed, 2 refused, 130 cancelled (the last checkpoint is kept).",
    )
    train.add_argument("analysis", metavar="ANALYSIS_ID")
    train.add_argument(
        "--series",
        metavar="UID",
        nargs="+",
        default=[],
        help="indexed series to train on (UID or UID#N)",
    )
    train.add_argument(
        "--input",
        metavar="PATH",
        nargs="+",
        default=[],
        help="DICOM folders or files (or files a reader plugin reads) to train on",
    )
    train.add_argument("--out", metavar="MODEL_DIR", required=True, help="the model folder")
    train.add_argument("--epochs", type=int, default=10, help="total epochs (default 10)")
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    train.add_argument(
        "--resume", action="store_true", help="carry on from MODEL_DIR's last checkpoint"
    )
    train.add_argument(
        "--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda, cuda:N or mps"
    )
    train.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from workstation.commands.plugins import _StderrProgress
    from workstation.plugins import inputs as input_loading
    from workstation.plugins.manager import UnknownAnalysis, load_registry
    from workstation.plugins.runner import CancelToken
    from workstation.plugins.training import NotTrainable, train_analysis

    if not args.series and not args.input:
        return fail("give the series to train on: --series UID ... or --input PATH ...", 2)
    registry = load_registry()
    try:
        entry = registry.analysis(args.analysis)
    except UnknownAnalysis as error:
        return fail(str(error), 2)
    if not entry.spec.train_entry:
        trainable = sorted(id for id, a in registry.analyses.items() if a.spec.train_entry)
        others = f"; analyses trained here: {', '.join(trainable)}" if trainable else ""
        return fail(
            f"{entry.id} cannot be trained from the workstation: its plugin offers no training "
            f"(its documentation says how its weights are made){others}",
            2,
        )
    store = store_dir(args)
    volumes, refs = [], []
    try:
        for series_id in args.series:
            loaded = input_loading.from_series(store, series_id)
            volumes.append(loaded.volume)
            refs.append(loaded.series)
        for path in args.input:
            loaded = input_loading.from_path(path, registry)
            volumes.append(loaded.volume)
            refs.append(loaded.series)
    except input_loading.InputProblem as error:
        return fail(str(error), 2)

    cancel = CancelToken()
    progress = _StderrProgress(entry.id)
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["outcome"] = train_analysis(
                entry.spec,
                volumes,
                args.out,
                series_refs=refs,
                epochs=args.epochs,
                seed=args.seed,
                resume=args.resume,
                device=args.device,
                on_progress=progress.progress,
                on_log=progress.log,
                cancel=cancel,
            )
        except NotTrainable as error:
            box["error"] = str(error)

    quit_now = threading.Event()

    def stop_waiting() -> None:  # second Ctrl-C: every checkpoint file is complete, so go
        print("\nworkstation: quitting now", file=sys.stderr, flush=True)
        quit_now.set()

    worker = threading.Thread(target=work, name=f"train-{entry.id}", daemon=True)
    worker.start()
    message = "cancelling after this batch (Ctrl-C again to quit now; the last checkpoint is kept)"
    with CtrlC(cancel, stop_waiting, message + "..."):
        while worker.is_alive() and not quit_now.is_set():
            worker.join(0.2)
    if quit_now.is_set() and worker.is_alive():
        return fail(f"{entry.id} training cancelled; the last complete checkpoint is kept", 130)
    if "error" in box:
        return fail(box["error"], 2)
    outcome = box.get("outcome")
    if outcome is None:  # the trainer thread itself broke; its traceback is already on stderr
        return fail(f"{entry.id}: training ended without an outcome (model folder {args.out})", 1)
    if outcome.ok:
        print(outcome.message(), file=sys.stderr)
        print(outcome.model_dir)
        return 0
    if outcome.traceback:
        print(outcome.traceback.rstrip(), file=sys.stderr)
    kept = f" (last checkpoint: epoch {outcome.epochs_done})" if outcome.epochs_done else ""
    return fail(cli_message(outcome) + kept, EXIT_CODES.get(outcome.outcome, 1))


def cli_message(outcome: Any) -> str:
    """The outcome's line, with what to do about a refusal in the command's own flags."""
    if outcome.outcome == "refused" and outcome.cli_hint:
        return f"{outcome.message()}; {outcome.cli_hint}"
    return outcome.message()
