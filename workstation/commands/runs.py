"""`workstation runs [--json]`: the history of analysis runs, newest first."""

from __future__ import annotations

import argparse

from workstation.commands.common import print_json, store_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "runs",
        help="list past analysis runs and how they ended",
        description="Every run is recorded: analysis and version, parameters, inputs, device, "
        "start, duration, outcome, error and output files.",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--limit", type=int, default=50, help="newest N runs (default 50; 0 = all)")
    parser.add_argument("--analysis", metavar="ID", help="only runs of this analysis")
    parser.set_defaults(func=_runs)


def _runs(args: argparse.Namespace) -> int:
    from workstation.plugins.run_store import RunStore

    with RunStore(store_dir(args)) as store:
        records = store.list(limit=args.limit or None, analysis_id=args.analysis)
    if args.json:
        print_json([record.to_dict() for record in records])
        return 0
    if not records:
        print("no runs recorded")
    for record in records:
        duration = f"{record.duration_s:.2f} s" if record.duration_s is not None else "-"
        line = (
            f"{record.started_at}  {record.run_id}  {record.analysis_id} {record.analysis_version}"
            f"  {record.outcome}  {duration}  {record.device or '-'}"
        )
        print(line)
        if record.error:
            print(f"    {record.error}")
        for output in record.outputs:
            print(f"    {output.get('path', output)}")
    return 0
