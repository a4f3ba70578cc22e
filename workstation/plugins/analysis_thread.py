"""A long-lived thread that runs in-process analyses one after another.

Why not a new thread per run: PyTorch's CPU kernels keep a thread team per calling thread, so
the first network call on a fresh thread pays for starting it (5-10 ms for the segmentation
demo on a 2-core CPU, some 7% of a small run). A thread that ran one analysis runs the
next at the cost of the main thread. A run the host gave up waiting for (an ignored cancel or
time-out) keeps its thread: that thread is retired and finishes on its own, never reused.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable

_STOP = object()


class AnalysisThread:
    """Runs submitted callables on one daemon thread, one at a time, in order."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._idle = threading.Event()
        self._idle.set()
        self._retired = False
        self._thread = threading.Thread(target=self._loop, name="analysis", daemon=True)
        self._thread.start()

    def submit(self, name: str, job: Callable[[], None]) -> None:
        """Start `job` on the thread (named `name` while it runs); `wait()` tells when done."""
        if self._retired:
            raise RuntimeError("this analysis thread is retired")
        self._idle.clear()
        self._jobs.put((name, job))

    def wait(self, timeout: float) -> bool:
        """True once the submitted job has returned (it must catch its own errors)."""
        return self._idle.wait(timeout)

    @property
    def busy(self) -> bool:
        return not self._idle.is_set()

    def retire(self) -> None:
        """No more jobs: the thread ends after the one it is running, if any."""
        self._retired = True
        self._jobs.put(_STOP)

    def _loop(self) -> None:
        while True:
            item = self._jobs.get()
            if item is _STOP:
                return
            name, job = item
            self._thread.name = name
            try:
                job()
            finally:
                _reset_thread_state()
                self._thread.name = "analysis"
                self._idle.set()


def retire_all(threads: list[AnalysisThread]) -> None:
    for thread in threads:
        thread.retire()


def _reset_thread_state() -> None:
    """Undo per-thread switches an analysis may leave behind, so the next starts clean: torch's
    grad mode is per thread (autocast and inference mode are context managers and undo
    themselves)."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_grad_enabled"):
        torch.set_grad_enabled(True)
