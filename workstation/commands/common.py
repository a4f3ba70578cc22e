"""Helpers shared by the subcommands: the store folder, JSON output, errors on stderr."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from workstation.store import resolve_store_dir


def store_dir(args: argparse.Namespace) -> Path:
    return resolve_store_dir(getattr(args, "store", None))


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def fail(message: str, code: int = 1) -> int:
    print(f"workstation: error: {message}", file=sys.stderr)
    return code
