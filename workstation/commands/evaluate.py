"""`workstation evaluate ANALYSIS --dataset DIR|DATALIST.json`: score an analysis on a data set."""

from __future__ import annotations

import argparse
import sys

from workstation.commands.common import fail

DESCRIPTION = """\
Runs ANALYSIS on every case of a labelled data set with the same parameters, weights, device
and seed for each case, as `workstation run` would (in this process; with a bundle folder as
--weights, in a worker process; the case runs are not added to `workstation runs`), and writes
into --out:
cases.csv (one row per case), summary.json (the metrics, and what was evaluated: analysis and
plugin versions, the parameters used with their defaults, weights path and sha256, device,
seed) and a plot. Results from the plugin's shipped demo weights are marked: a demo_weights
column in cases.csv, "demo_weights": true in summary.json, DEMO WEIGHTS in the plot titles.

Data set: a MONAI-style datalist JSON ({"testing": [{"image": ..., "label": ...}, ...]}, also
"test" or "validation"; paths relative to the file; an image is a NIfTI file or a DICOM folder)
or a folder with images/ and labels/ holding NIfTI files of the same names. Every file is
checked before the first case runs. What the label is depends on the analysis:

  segmentation    label = a label map on the image's grid (resampled, nearest, if not).
                  Dice and HD95 (mm) per label the analysis produces; reference values it does
                  not produce are not scored and are named in a note. Map a reference numbered
                  differently with --label-map REF=ANALYSIS[,...].
  classification  label = the true class index (0, 1, ...). ROC AUC, accuracy, recall,
                  specificity, precision, F1 (binary: the second class is the positive one) and
                  the confusion matrix (rows = true class); a ROC curve.
  reconstruction  image = the degraded acquisition (low-dose CT, undersampled MR), label = its
                  clean reference. PSNR/SSIM of the restored output (psnr_db, ssim) and of the
                  input (psnr_input, ssim_input) against the reference, and the gain
                  (psnr_gain_db, ssim_gain). With --param simulate=true the analysis degrades
                  the image itself and restores that copy: the input scored is then its
                  degraded copy, and the label should be the clean image itself.

Exit status: 0 every case scored, 1 some cases failed (named on stderr and in summary.json),
2 refused and nothing written: a bad data set or a missing file (all checked before the first
case), a bad option, parameter or device, weights that are missing, not trusted or that do not
load (stopped at the first case, said once). See docs/evaluation.md.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="run an analysis over a labelled data set and score it",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("analysis", metavar="ANALYSIS", help="analysis id (`workstation plugins`)")
    parser.add_argument(
        "--dataset",
        required=True,
        metavar="DIR|DATALIST.json",
        help="datalist JSON file, or a folder with images/ and labels/",
    )
    parser.add_argument("--out", metavar="DIR", help="output folder (default: evaluation-ANALYSIS)")
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="analysis parameter"
    )
    parser.add_argument(
        "--weights",
        metavar="PATH",
        help="model weights to evaluate instead of the plugin's own (checkpoint file or MONAI "
        "bundle folder), as `workstation run --weights`; a bundle must be trusted first "
        "(`workstation models trust PATH`)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed for every case (default 0)"
    )
    parser.add_argument(
        "--binary",
        action="store_true",
        help="segmentation: score any non-zero label as one foreground (for analyses that "
        "number components)",
    )
    parser.add_argument(
        "--label-map",
        action="append",
        default=[],
        metavar="REF=ANALYSIS[,...]",
        help="segmentation: score reference label REF as the analysis's label ANALYSIS (e.g. "
        "4=1,6=2); reference labels not listed are background, named in a note",
    )
    parser.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from workstation.commands.common import store_dir
    from workstation.evaluation import DatasetProblem, EvaluationRefused, evaluate, parse_label_map
    from workstation.plugins.manager import UnknownAnalysis

    params = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            return fail(f"--param {item!r}: expected NAME=VALUE", 2)
        params[name.strip()] = value
    out = args.out or f"evaluation-{args.analysis}"
    try:
        label_map = parse_label_map(args.label_map) if args.label_map else None
        summary = evaluate(
            args.analysis,
            args.dataset,
            out,
            params=params,
            device=args.device,
            weights=args.weights,
            seed=args.seed,
            binary=args.binary,
            label_map=label_map,
            store_dir=store_dir(args),
            progress=lambda message: print(message, file=sys.stderr, flush=True),
        )
    except (DatasetProblem, EvaluationRefused, UnknownAnalysis) as error:
        return fail(str(error), 2)
    scored = len(summary.rows) - len(summary.failed)
    demo = " (DEMO WEIGHTS: not for clinical use)" if summary.demo_weights else ""
    print(f"{scored} of {len(summary.rows)} cases scored{demo}")
    for path in summary.files:
        print(f"wrote {path}")
    for _case, message in summary.failed:
        print(f"workstation: error: {message}", file=sys.stderr)
    return 0 if summary.ok else 1
