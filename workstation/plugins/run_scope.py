"""What the host sets around one analysis call, so plugins need not pass it on themselves.

- The run's store becomes the store the model helpers check trust in when they are given no
  `store_dir` (`workstation --store DIR run ...` checks trust in DIR, for every plugin).
- Warnings the host's model helpers log on the "workstation.models" logger during the run (a
  bundle tested with another MONAI version, a bf16 slow-down, an out-of-memory retry) go to the
  run's log, like `ctx.logger`'s: `workstation run` prints them and run.json keeps them as notes.

Both are context variables: they hold for the code the analysis runs in the calling thread
(the in-process analysis thread, or the isolated worker's main thread), not for threads the
analysis starts itself, and two runs in one process never see each other's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from workstation.plugins.context import LogCallback

MODELS_LOGGER = "workstation.models"

_RUN_LOG: ContextVar[LogCallback | None] = ContextVar("workstation_run_log", default=None)


class _RunLogRouter(logging.Handler):
    """On the "workstation.models" logger: a record logged inside a run goes to that run's log;
    one logged outside any run goes where Python would have put it without this handler."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        sink = _RUN_LOG.get()
        if sink is None:
            _last_resort(record)
            return
        try:
            sink(record.levelno, self.format(record))
        except Exception:  # a failing sink must not fail the analysis
            self.handleError(record)


def _last_resort(record: logging.LogRecord) -> None:
    """Python's own fallback (a warning on stderr) when no other handler would take it."""
    logger: logging.Logger | None = logging.getLogger(record.name)
    while logger is not None:
        if any(not isinstance(h, _RunLogRouter) for h in logger.handlers):
            return  # the application configured logging: it is handled there
        if not logger.propagate:
            break
        logger = logger.parent
    fallback = logging.lastResort
    if fallback is not None and record.levelno >= fallback.level:
        fallback.handle(record)


_ROUTER = _RunLogRouter()


def _install_router() -> None:
    logger = logging.getLogger(MODELS_LOGGER)
    if _ROUTER not in logger.handlers:
        logger.addHandler(_ROUTER)


@contextmanager
def analysis_scope(
    store_dir: str | os.PathLike[str] | None, on_log: LogCallback | None
) -> Iterator[None]:
    """Around `entry(ctx)`: `store_dir` (None: the default store) is the model helpers' trust
    store, and "workstation.models" records go to `on_log`."""
    from workstation.models.trust import store_for_run

    _install_router()
    token = _RUN_LOG.set(on_log)
    try:
        with store_for_run(store_dir):
            yield
    finally:
        _RUN_LOG.reset(token)
