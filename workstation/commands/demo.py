"""`workstation demo`: make a synthetic data set, index it, run an analysis, open the window."""

from __future__ import annotations

import argparse

from workstation.commands.common import store_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="make demo patients (CT/MR phantoms, records), index them, run an analysis",
        description="Makes a few synthetic patients with CT/MR phantom studies and FHIR records, "
        "indexes them into the store, runs the threshold analysis and opens the main window "
        "(headless without a display: prints what it indexed, ran and wrote).",
    )
    parser.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from workstation.demo import main_from_cli

    return main_from_cli(store_dir(args))
