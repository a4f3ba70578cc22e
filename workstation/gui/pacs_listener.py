"""The listener switch: starts and stops the workstation's DICOM listener (C-ECHO / C-STORE SCP)
in the background, counts what arrives and says its state in words for the status bar.

The listener stores and indexes each object itself; this object only relays its arrivals to the
UI thread (`received`), where the study browser refresh is throttled by the caller."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from workstation.gui.pacs_background import BackgroundCalls


class ListenerSwitch(QObject):
    """`start(ae_title, port, accept_any)` / `stop()`; `state_changed(text)` after each change,
    `received(series_uid)` once per indexed arrival, `failed(message)` when it cannot listen."""

    state_changed = Signal(str)
    received = Signal(str)
    failed = Signal(str)
    _arrived = Signal(object)

    def __init__(self, store_dir: str | Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store_dir = Path(store_dir)
        self.listener: Any = None
        self.count = 0
        self.state = "off"  # off, starting, on, stopping
        self._just_started: Any = None
        self._stop_requested = False
        self._calls = BackgroundCalls(self)
        self._arrived.connect(self._on_arrived)

    @property
    def running(self) -> bool:
        return self.state == "on"

    def describe(self) -> str:
        if self.state == "on" and self.listener is not None:
            return (
                f"Listener on: {self.listener.ae_title} port {self.listener.port} · "
                f"{self.count} received"
            )
        if self.state == "starting":
            return "Listener starting…"
        if self.state == "stopping":
            return "Listener stopping…"
        return f"Listener off · {self.count} received" if self.count else "Listener off"

    def start(self, ae_title: str, port: int, accept_any: bool = False) -> None:
        if self.state != "off":
            return
        self._set_state("starting")

        def start_listening() -> Any:
            from workstation.dicom.net import Listener

            listener = Listener(
                self.store_dir,
                ae_title=ae_title,
                port=port,
                accept_any=accept_any,
                on_received=self._arrived.emit,  # called on the listener's indexing thread
            )
            try:
                listener.start()
            except BaseException:
                listener.stop()
                raise
            self._just_started = listener  # seen by stop(wait=True) before the signal lands
            return listener

        self._calls.run(start_listening, self._on_started, self._on_start_failed)

    def stop(self, wait: bool = False) -> None:
        """Stop listening; `wait=True` blocks until the port is closed (window closing)."""
        if wait:
            self._calls.wait()
            listener = self.listener or self._just_started
            self.listener, self._just_started = None, None
            if listener is not None:
                listener.stop()
            self._set_state("off")
            return
        if self.state == "starting":
            self._stop_requested = True
            return
        listener, self.listener = self.listener, None
        if listener is None:
            self._set_state("off")
            return
        self._set_state("stopping")
        self._calls.run(listener.stop, lambda _r: self._set_state("off"), self._on_stop_failed)

    # -- callbacks on the UI thread ----------------------------------------------------------------
    def _on_started(self, listener: Any) -> None:
        if self._just_started is not listener:  # stopped (window closed) while starting
            return
        self._just_started = None
        self.listener = listener
        self._set_state("on")
        if self._stop_requested:
            self._stop_requested = False
            self.stop()

    def _on_start_failed(self, error: Exception) -> None:
        self._stop_requested = False
        self._set_state("off")
        self.failed.emit(listen_error_text(error))

    def _on_stop_failed(self, error: Exception) -> None:
        self._set_state("off")
        self.failed.emit(f"The listener did not stop cleanly: {error}")

    def _on_arrived(self, item: Any) -> None:
        self.count += 1
        self.received.emit(str(getattr(item, "series_uid", "")))
        self.state_changed.emit(self.describe())

    def _set_state(self, state: str) -> None:
        self.state = state
        self.state_changed.emit(self.describe())


def listen_error_text(error: Exception) -> str:
    """Why the listener could not start, in words (a port in use is the usual cause)."""
    if isinstance(error, OSError) and error.errno in (98, 48, 10048):  # EADDRINUSE
        return (
            "Cannot listen: the port is already in use (another workstation listener, or a "
            "PACS program on this computer). Choose another port in PACS settings."
        )
    if isinstance(error, PermissionError) or getattr(error, "errno", None) == 13:
        return "Cannot listen: ports below 1024 need administrator rights; choose another port."
    return f"Cannot listen: {error}"
