"""The PACS menu of the main window: Query/Retrieve, the listener switch and PACS settings.

`install_pacs_menu(window)` is the one call the main window makes. It adds the menu, a
permanent status-bar label with the listener's state, refreshes the study browser (throttled)
as objects arrive, and stops the listener and any retrieval when the window closes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QObject, QSettings, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QSpinBox,
    QWidget,
)

from workstation.gui.pacs_listener import ListenerSwitch
from workstation.gui.pacs_settings import accept_any_ae, listener_port, our_ae_title

if TYPE_CHECKING:
    from workstation.gui.pacs_dialog import PacsDialog

REFRESH_INTERVAL_MS = 1000
"""The browser is rebuilt at most once a second while objects arrive: a study of hundreds of
images arrives at ~100 a second and each rebuild reads the whole catalog."""


class BrowserRefresher(QObject):
    """`request()` as often as you like; the browser refreshes at most once per interval."""

    def __init__(self, browser: Any, interval_ms: int = REFRESH_INTERVAL_MS) -> None:
        super().__init__(browser)
        self.browser = browser
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.refresh_now)

    def request(self, *_args: Any) -> None:
        if not self.timer.isActive():
            self.timer.start()

    def refresh_now(self, *_args: Any) -> None:
        self.timer.stop()
        self.browser.refresh()


class PacsSettingsDialog(QDialog):
    """Our AE title (used to call nodes and to listen), the listener's port, and whether the
    listener accepts unregistered callers."""

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("PACS settings")
        self.settings = settings
        self.ae_title = QLineEdit(our_ae_title(settings))
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(listener_port(settings))
        self.accept_any = QCheckBox("Accept objects from any AE title (not only registered nodes)")
        self.accept_any.setChecked(accept_any_ae(settings))
        self.message = QLabel()
        self.message.setWordWrap(True)
        form = QFormLayout(self)
        form.addRow("Our AE title", self.ae_title)
        form.addRow("Listener port", self.port)
        form.addRow(self.accept_any)
        form.addRow(self.message)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def save(self) -> None:
        from workstation.dicom.net import NodeError
        from workstation.dicom.net.nodes import validate_ae_title

        try:
            ae = validate_ae_title(self.ae_title.text())
        except NodeError as error:
            self.message.setText(str(error))
            return
        self.settings.setValue("pacs/ae_title", ae)
        self.settings.setValue("pacs/listener_port", self.port.value())
        self.settings.setValue("pacs/accept_any", self.accept_any.isChecked())
        self.accept()


class PacsControls(QObject):
    """What `install_pacs_menu` adds to a window; kept on the window as `window.pacs`."""

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.settings: QSettings = window.settings
        self.store_dir = window.store_dir
        self.dialog: PacsDialog | None = None
        browser = getattr(window, "browser", None)
        self.refresher = BrowserRefresher(browser) if browser is not None else None
        self.listener = ListenerSwitch(self.store_dir, self)
        self.status_label = QLabel(self.listener.describe())
        window.statusBar().addPermanentWidget(self.status_label)
        self.listener.state_changed.connect(self._on_listener_state)
        self.listener.failed.connect(self._on_listener_failed)
        if self.refresher is not None:
            self.listener.received.connect(self.refresher.request)
        self.menu = self._build_menu()
        window.installEventFilter(self)

    def _build_menu(self):
        bar = self.window.menuBar()
        menu = bar.addMenu("&PACS")
        help_action = next((a for a in bar.actions() if a.text() == "&Help"), None)
        if help_action is not None:  # keep Help last, where users look for it
            bar.removeAction(menu.menuAction())
            bar.insertMenu(help_action, menu)
        self.query_action = QAction("&Query / Retrieve…", self.window)
        self.query_action.setShortcut(QKeySequence("Ctrl+Shift+F"))
        self.query_action.triggered.connect(lambda _checked=False: self.show_dialog())
        menu.addAction(self.query_action)
        self.listen_action = QAction("&Listen for incoming images", self.window)
        self.listen_action.setCheckable(True)
        self.listen_action.toggled.connect(self.set_listening)
        menu.addAction(self.listen_action)
        menu.addSeparator()
        settings_action = QAction("PACS &settings…", self.window)
        settings_action.triggered.connect(lambda _checked=False: self.edit_settings())
        menu.addAction(settings_action)
        return menu

    # -- query / retrieve ----------------------------------------------------------------------
    def show_dialog(self) -> PacsDialog:
        if self.dialog is None:
            from workstation.gui.pacs_dialog import PacsDialog  # built when first asked for

            self.dialog = PacsDialog(self.store_dir, self.settings, self.window)
            if self.refresher is not None:
                self.dialog.stored.connect(self.refresher.request)
                self.dialog.retrieval_finished.connect(self.refresher.refresh_now)
            self.dialog.retrieval_finished.connect(self._on_retrieval_finished)
        self.dialog.reload_nodes()
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog

    def _on_retrieval_finished(self, outcomes: list) -> None:
        complete = sum(1 for o in outcomes if o.complete)
        self.window.statusBar().showMessage(
            f"PACS retrieval: {complete} of {len(outcomes)} complete", 10000
        )

    # -- listener ------------------------------------------------------------------------------
    def set_listening(self, on: bool) -> None:
        if on:
            self.listener.start(
                our_ae_title(self.settings),
                listener_port(self.settings),
                accept_any_ae(self.settings),
            )
        else:
            self.listener.stop()

    def _on_listener_state(self, text: str) -> None:
        self.status_label.setText(text)
        on = self.listener.state in ("on", "starting")
        if self.listen_action.isChecked() != on and self.listener.state != "stopping":
            self.listen_action.blockSignals(True)
            self.listen_action.setChecked(on)
            self.listen_action.blockSignals(False)

    def _on_listener_failed(self, message: str) -> None:
        self.status_label.setText(message)
        self.window.statusBar().showMessage(message, 15000)

    def edit_settings(self) -> None:
        dialog = PacsSettingsDialog(self.settings, self.window)
        if dialog.exec() == QDialog.DialogCode.Accepted and self.listener.running:
            QMessageBox.information(
                self.window,
                "PACS settings",
                "The listener keeps its current AE title and port until you switch it off and on.",
            )

    # -- closing -------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop the listener (the port is free afterwards) and any retrieval."""
        if self.dialog is not None:
            self.dialog.shutdown()
        self.listener.stop(wait=True)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.window and event.type() == QEvent.Type.Close:
            self.shutdown()
        return False


def install_pacs_menu(window: QMainWindow) -> PacsControls:
    """Add the PACS menu and listener status to the main window (`window.pacs` afterwards)."""
    controls = PacsControls(window)
    window.pacs = controls  # type: ignore[attr-defined]
    return controls
