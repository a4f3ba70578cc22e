"""`workstation ...`: the command line. Headless subcommands never import Qt, torch or monai.

Each area contributes its subcommands from a module in `workstation.commands` exposing
``register(subparsers)``; handlers take the parsed arguments and return an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from workstation import __version__

# Modules in workstation.commands, in the order their subcommands appear in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "dicom",
    "plugins",
    "runs",
    "train",
    "records",
    "pacs",
    "models",
    "gui",
    "demo",
    "evaluate",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workstation",
        description="Imaging and records workstation: index DICOM, view series, run analyses.",
    )
    parser.add_argument("--version", action="version", version=f"workstation {__version__}")
    parser.add_argument(
        "--store",
        metavar="DIR",
        help="store folder (default: $WORKSTATION_HOME, else $XDG_DATA_HOME/workstation, "
        "else ~/.local/share/workstation)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"workstation.commands.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"workstation.commands.{name}":
                continue  # that area has no commands yet
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        if "gui" in parser._subparsers._group_actions[0].choices:  # type: ignore[union-attr]
            args = parser.parse_args([*(argv or sys.argv[1:]), "gui"])
        else:
            parser.print_help()
            return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
