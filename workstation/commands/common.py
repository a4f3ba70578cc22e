"""Helpers shared by the subcommands: the store folder, JSON output, errors on stderr, Ctrl-C."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workstation.store import resolve_store_dir


def store_dir(args: argparse.Namespace) -> Path:
    """The store folder as an absolute path: helpers such as dcmtk's getscu run in other
    folders, so a relative --store or WORKSTATION_HOME must not be read against theirs."""
    return resolve_store_dir(getattr(args, "store", None)).absolute()


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def fail(message: str, code: int = 1) -> int:
    print(f"workstation: error: {message}", file=sys.stderr)
    return code


class CtrlC:
    """While a run or training is under way, the first Ctrl-C (SIGINT) cancels it, so it ends
    "cancelled" (exit 130) once the work has stopped; a second one calls `quit_now`.

    A handler instead of KeyboardInterrupt: an exception raised inside `Thread.join` or
    `Event.wait` can leave the thread bookkeeping broken, so the run would end unrecorded, and
    a second Ctrl-C would end in a traceback. Outside the main thread it does nothing.
    """

    def __init__(
        self,
        cancel: Any,
        quit_now: Callable[[], None],
        message: str = "cancelling (Ctrl-C again to quit now)...",
    ) -> None:
        self.cancel = cancel
        self.quit_now = quit_now
        self.message = message
        self._previous: Any = None
        self._installed = False
        self._presses = 0

    def __enter__(self) -> CtrlC:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: Any) -> None:
        # count first: a second Ctrl-C may arrive while this handler is still printing
        self._presses += 1
        if self._presses == 1:
            self.cancel.cancel()
            print(f"\n{self.message}", file=sys.stderr, flush=True)
        elif self._presses == 2:
            self.quit_now()
