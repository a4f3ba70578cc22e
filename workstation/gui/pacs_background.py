"""Network work off the UI thread: short calls (echo, find, starting a listener) on a Python
thread, and retrievals in a child process followed by a reader thread. Results come back as
Qt signals, which Qt delivers on the UI thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

if TYPE_CHECKING:
    from workstation.gui.pacs_retrieval import RetrievalRequest, Target, TargetOutcome


class BackgroundCalls(QObject):
    """`run(fn, on_done, on_error)`: fn runs on a thread; one callback runs on the UI thread."""

    _finished = Signal(int, object, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._callbacks: dict[int, tuple[Callable[[Any], None], Callable[[Exception], None]]] = {}
        self._next = 0
        self._threads: dict[int, threading.Thread] = {}
        self._finished.connect(self._deliver)

    def run(
        self,
        fn: Callable[[], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[Exception], None],
    ) -> None:
        token = self._next
        self._next += 1
        self._callbacks[token] = (on_done, on_error)

        def work() -> None:
            try:
                result, error = fn(), None
            except Exception as caught:  # shown to the user by on_error
                result, error = None, caught
            self._finished.emit(token, result, error)

        thread = threading.Thread(target=work, name="pacs-call", daemon=True)
        self._threads[token] = thread
        thread.start()

    def busy(self) -> bool:
        return bool(self._callbacks)

    def wait(self, timeout: float = 30.0) -> None:
        """Block until the running calls return (used when the window closes)."""
        deadline = time.monotonic() + timeout
        for thread in list(self._threads.values()):
            thread.join(max(0.0, deadline - time.monotonic()))

    def _deliver(self, token: int, result: Any, error: Any) -> None:
        on_done, on_error = self._callbacks.pop(token)
        self._threads.pop(token, None)
        if error is not None:
            on_error(error)
        else:
            on_done(result)


class RetrieveJob(QObject):
    """One retrieval (several targets in a row) in a child process.

    Signals: `planned(list[Target])`, `progress(target_index, done, total)` at most 20 times a
    second, `stored(series_uid)` as instances are indexed, `target_done(TargetOutcome)`,
    `finished(list[TargetOutcome])` once, after everything that arrived is indexed.
    """

    planned = Signal(list)
    progress = Signal(int, int, int)
    stored = Signal(str)
    target_done = Signal(object)
    finished = Signal(list)

    PROGRESS_INTERVAL_S = 0.05

    def __init__(self, request: RetrievalRequest, parent: QObject | None = None) -> None:
        super().__init__(parent)
        from workstation.gui.pacs_retrieval import RetrievalProcess

        self.request = request
        self.process = RetrievalProcess(request)
        self.targets: list[Target] = list(request.targets)
        self.outcomes: list[TargetOutcome] = []
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.process.start()
        self._thread = threading.Thread(target=self._read, name="pacs-retrieve", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        self.process.cancel()

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float = 60.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    # -- reader thread -------------------------------------------------------------------------
    def _read(self) -> None:
        from workstation.gui.pacs_retrieval import Target

        done_by_target: dict[int, int] = {}
        outcomes: dict[int, TargetOutcome] = {}
        ended = False
        last_emit = 0.0
        for event in self.process.events():
            kind = event.get("event")
            index = int(event.get("target", 0))
            if kind == "plan":
                self.targets = [Target(**t) for t in event["targets"]]
                self.planned.emit(list(self.targets))
            elif kind == "progress":
                done_by_target[index] = int(event["done"])
                now = time.monotonic()
                if event["done"] >= event["total"] or now - last_emit >= self.PROGRESS_INTERVAL_S:
                    last_emit = now
                    self.progress.emit(index, int(event["done"]), int(event["total"]))
            elif kind == "indexed":
                self.stored.emit(str(event.get("series", "")))
            elif kind in ("report", "error"):
                outcome = self._outcome(index, event, done_by_target.get(index, 0))
                outcomes[index] = outcome
                self.target_done.emit(outcome)
            elif kind == "end":
                ended = True
        code = self.process.wait()
        if not ended:
            self._after_interruption(outcomes, done_by_target, code)
        self.process.close()
        self.outcomes = [outcomes[i] for i in sorted(outcomes)]
        self.finished.emit(self.outcomes)

    def _outcome(self, index: int, event: dict, done: int) -> TargetOutcome:
        from workstation.gui.pacs_retrieval import Target, TargetOutcome

        target = self.targets[index] if 0 <= index < len(self.targets) else Target(label="query")
        if event["event"] == "error":
            kind = str(event.get("kind") or "")
            return TargetOutcome(target, error=str(event["message"]), kind=kind, done=done)
        return TargetOutcome(target, report=event["report"], done=done)

    def _after_interruption(
        self, outcomes: dict[int, TargetOutcome], done_by_target: dict[int, int], code: int
    ) -> None:
        """Cancelled or crashed: index what arrived, and say what each unfinished target got."""
        from workstation.gui.pacs_retrieval import Target, TargetOutcome, index_arrivals

        reason = "" if self.process.cancelled else self._crash_message(code)
        try:
            index_arrivals(self.request.store_dir, [t.study_uid for t in self.targets])
        except Exception as error:  # the files are stored; the user can import them again
            reason = f"{reason}\nindexing what arrived failed: {error}".strip()
        for index, target in enumerate(self.targets):
            if index in outcomes:
                continue
            outcome = TargetOutcome(
                target,
                error=reason,
                done=done_by_target.get(index, 0),
                cancelled=self.process.cancelled,
            )
            outcomes[index] = outcome
            self.target_done.emit(outcome)
        if not self.targets and reason:
            outcomes[-1] = TargetOutcome(Target(label="retrieval"), error=reason)

    def _crash_message(self, code: int) -> str:
        tail = self.process.stderr_tail()
        return f"the retrieval process stopped unexpectedly (exit code {code})" + (
            f": {tail}" if tail else ""
        )
