"""`workstation evaluate ANALYSIS --dataset DIR|DATALIST.json`: score an analysis on a data set."""

from __future__ import annotations

import argparse
import sys

from workstation.commands.common import fail


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="run an analysis over a labelled data set and score it",
        description="Runs ANALYSIS on every case of a data set and writes cases.csv (one row per "
        "case), summary.json and plots: Dice/HD95 and a Dice box plot for segmentation, ROC AUC, "
        "confusion-matrix metrics and a ROC curve for classification, PSNR/SSIM for "
        "reconstruction. The data set is a MONAI-style datalist JSON ({'testing': [{'image': "
        "..., 'label': ...}]}, paths relative to the file; label = label-map file, class index "
        "or reference image) or a folder with images/ and labels/ holding NIfTI files of the "
        "same names.",
    )
    parser.add_argument("analysis", metavar="ANALYSIS", help="analysis id (`workstation plugins`)")
    parser.add_argument("--dataset", required=True, metavar="DIR|DATALIST.json")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: evaluation-ANALYSIS)")
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="analysis parameter"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    parser.add_argument(
        "--binary",
        action="store_true",
        help="score any non-zero label as one foreground (for analyses that number components)",
    )
    parser.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from workstation.evaluation import DatasetProblem, evaluate
    from workstation.plugins.manager import UnknownAnalysis

    params = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            return fail(f"--param {item!r}: expected NAME=VALUE", 2)
        params[name.strip()] = value
    out = args.out or f"evaluation-{args.analysis}"
    try:
        summary = evaluate(
            args.analysis,
            args.dataset,
            out,
            params=params,
            device=args.device,
            binary=args.binary,
            progress=lambda message: print(message, file=sys.stderr, flush=True),
        )
    except (DatasetProblem, UnknownAnalysis) as error:
        return fail(str(error), 2)
    print(f"{len(summary.rows) - len(summary.failed)} of {len(summary.rows)} cases scored")
    for path in summary.files:
        print(f"wrote {path}")
    for _case, message in summary.failed:
        print(f"workstation: error: {message}", file=sys.stderr)
    return 0 if summary.ok else 1
