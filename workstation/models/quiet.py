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

log = logging.getLogger("workstation.models")
LIBRARY_LOGGERS = ("monai", "ignite")
_lock = threading.RLock()


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


@contextmanager
def library_messages_to_log(target: logging.Logger = log) -> Iterator[None]:
    """Route warnings and MONAI/ignite log records raised inside to `target` at DEBUG."""
    with _lock:
        handler = _ToLog(target)
        saved = []
        for logger in _library_loggers():
            saved.append((logger, logger.propagate, list(logger.handlers)))
            # MONAI gives some of its loggers their own stream handler: swap those out too
            logger.handlers = [handler]
            logger.propagate = False
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                yield
        finally:
            for logger, propagate, handlers in saved:
                logger.handlers = handlers
                logger.propagate = propagate
            seen: set[str] = set()
            for item in caught:
                text = f"{item.category.__name__}: {item.message}"
                if text not in seen:
                    seen.add(text)
                    target.debug("%s (%s:%s)", text, item.filename, item.lineno)
