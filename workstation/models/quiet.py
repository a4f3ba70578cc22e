"""Library chatter during bundle work goes to the log, not to the user's terminal.

Building a zoo bundle makes MONAI and its readers talk: "nvImageCodec is not available",
"Falling back to default pydicom decoders", deprecation notices for arguments the bundle's
authors chose, "Detected deprecated name ...". None of it is for the radiologist at the
terminal and none of it changes the result, so inside `library_messages_to_log()` Python
warnings and the records of MONAI's loggers are re-logged at DEBUG on the
"workstation.models" logger. The host's own warnings (e.g. the bundle's tested MONAI version)
use that logger at WARNING and are untouched.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

log = logging.getLogger("workstation.models")
LIBRARY_LOGGERS = ("monai", "ignite")

# Where warnings raised in the current thread go while inside `library_messages_to_log`.
_WARNINGS_TARGET: ContextVar[logging.Logger | None] = ContextVar("quiet_target", default=None)
# Held only while loggers are swapped or restored, never while bundle code runs: a run left
# running after a cancel must not keep the next one from starting.
_lock = threading.Lock()
_active = 0
_saved: list[tuple[logging.Logger, bool, list[logging.Handler]]] = []
_original_showwarning = None


class _ToLog(logging.Handler):
    def __init__(self, target: logging.Logger) -> None:
        super().__init__(logging.DEBUG)
        self._target = target

    def emit(self, record: logging.LogRecord) -> None:
        self._target.debug("%s: %s", record.name, record.getMessage())


def _library_loggers() -> list[logging.Logger]:
    """The top loggers of the libraries, and any of their children with handlers of their own."""
    found = [logging.getLogger(name) for name in LIBRARY_LOGGERS]
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        top = name.split(".", 1)[0]
        mine = top in LIBRARY_LOGGERS and name != top
        if mine and isinstance(logger, logging.Logger) and logger.handlers:
            found.append(logger)
    return found


def _showwarning(message, category, filename, lineno, file=None, line=None) -> None:
    """Python's warning display, except inside a quiet scope of this thread: to the log."""
    target = _WARNINGS_TARGET.get()
    if target is None:
        _original_showwarning(message, category, filename, lineno, file, line)
        return
    target.debug("%s: %s (%s:%s)", category.__name__, message, filename, lineno)


def _swap_in(target: logging.Logger) -> None:
    global _active, _original_showwarning
    with _lock:
        if _active == 0:
            handler = _ToLog(target)
            for logger in _library_loggers():
                _saved.append((logger, logger.propagate, list(logger.handlers)))
                # MONAI gives some of its loggers their own stream handler: swap those out too
                logger.handlers = [handler]
                logger.propagate = False
            if warnings.showwarning is not _showwarning:
                _original_showwarning = warnings.showwarning
                warnings.showwarning = _showwarning
        _active += 1


def _swap_out() -> None:
    global _active
    with _lock:
        _active -= 1
        if _active == 0:
            for logger, propagate, handlers in _saved:
                logger.handlers = handlers
                logger.propagate = propagate
            _saved.clear()
            if warnings.showwarning is _showwarning and _original_showwarning is not None:
                warnings.showwarning = _original_showwarning


@contextmanager
def library_messages_to_log(target: logging.Logger = log) -> Iterator[None]:
    """Route warnings raised inside (in this thread) and MONAI/ignite log records (while any
    such scope is open) to `target` at DEBUG. Scopes may nest and may be open in several
    threads at once."""
    _swap_in(target)
    token = _WARNINGS_TARGET.set(target)
    try:
        yield
    finally:
        _WARNINGS_TARGET.reset(token)
        _swap_out()
