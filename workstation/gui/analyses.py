"""The Analyses menu: built from the plugin registry, offering only analyses whose inputs match
what is open (an image series, a patient), each asking for its parameters and a device; a
"Train..." entry for each trainable analysis; and generated series saved into the store, so
they appear in the study browser (marked synthetic) like any other series."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtWidgets import QDialog, QDockWidget, QMenu

if TYPE_CHECKING:
    from workstation.gui.main_window import MainWindow


def matches_selection(spec: Any, has_volume: bool, has_patient: bool) -> bool:
    if getattr(spec, "inputs_optional", False):  # a generator runs with nothing selected
        return True
    kinds = {str(k) for k in spec.inputs}
    if "image_series" in kinds and not has_volume:
        return False
    return not ("patient_records" in kinds and not has_patient)


def ensure_jobs_panel(window: MainWindow, registry: Any = None) -> Any:
    from PySide6.QtCore import Qt

    from workstation.gui.jobs_panel import JobsPanel

    if window.jobs_panel is None:
        window.jobs_panel = JobsPanel(window.store_dir, registry)
        window.jobs_panel.results_ready.connect(window.show_results)
        dock = QDockWidget("Jobs", window)
        dock.setObjectName("dock-Jobs")
        dock.setWidget(window.jobs_panel)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    return window.jobs_panel


def fill_analyses_menu(window: MainWindow, menu: QMenu, registry: Any = None) -> None:
    menu.clear()
    try:
        if registry is None:
            from workstation.plugins.manager import load_registry

            registry = load_registry()
    except Exception as error:  # a broken plugin setup is shown in the menu, not raised
        menu.addAction(f"plugins unavailable: {error}").setEnabled(False)
        return
    model = window.model
    has_patient = bool(model and model.info.get("patient_id"))
    for entry in sorted(registry.analyses.values(), key=lambda e: e.spec.title):
        spec = entry.spec
        action = menu.addAction(f"{spec.title} ({spec.id})")
        action.setToolTip(spec.description)
        action.setEnabled(matches_selection(spec, model is not None, has_patient))
        action.triggered.connect(lambda _c=False, s=spec: start_from_dialog(window, s, registry))
    if not registry.analyses:
        menu.addAction("no analyses installed").setEnabled(False)
    add_train_actions(window, menu, registry)


def inputs_for(window: MainWindow) -> Any:
    from workstation.plugins.context import AnalysisInputs

    model = window.model
    volume = model.volume if model is not None else None
    return AnalysisInputs(
        volume=volume,
        series=volume.source if volume is not None else None,
        patient_id=(model.info.get("patient_id") if model is not None else None) or None,
    )


def start_from_dialog(window: MainWindow, spec: Any, registry: Any = None) -> None:
    from workstation.gui.parameter_form import ParameterDialog

    dialog = ParameterDialog(spec, window)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return
    start(window, spec.id, dialog.values(), dialog.device.currentText(), registry)


def start(
    window: MainWindow, analysis_id: str, params: dict, device: str = "auto", registry: Any = None
) -> None:
    panel = ensure_jobs_panel(window, registry)
    inputs = inputs_for(window)
    panel.start(analysis_id, inputs, params, device)
    entry = panel.runner.registry.analyses.get(analysis_id)
    if entry is not None and "generated_series" in {str(kind) for kind in entry.spec.returns}:
        _save_generated_when_done(window, panel, entry, inputs)


# --- training -------------------------------------------------------------------------------
def add_train_actions(window: MainWindow, menu: QMenu, registry: Any) -> None:
    """One "Train ..." entry per analysis with a `train_entry`, enabled when the store has
    series to train on (the dialog lists them, ticking those selected in the browser)."""
    trainable = sorted(
        (e.spec for e in registry.analyses.values() if e.spec.train_entry),
        key=lambda spec: spec.title,
    )
    if not trainable:
        return
    menu.addSeparator()
    has_series = bool(store_series_ids(window))
    for spec in trainable:
        action = menu.addAction(f"Train {spec.title} ({spec.id})...")
        action.setEnabled(has_series)
        action.setToolTip(
            f"train {spec.id}'s model on series you choose"
            if has_series
            else "the store has no series to train on: import a folder first"
        )
        action.triggered.connect(lambda _c=False, s=spec: open_training_dialog(window, s))


def store_series_ids(window: MainWindow) -> list[str]:
    """The series the browser lists (all of the store's, whatever the search box hides)."""
    if window.browser is not None:
        from workstation.gui.browser import SERIES_ROLE

        return [item.data(0, SERIES_ROLE) for item in _series_items(window.browser.tree)]
    from workstation.gui.training_picker import series_rows

    try:
        return [row["series_id"] for row in series_rows(window.store_dir)]
    except Exception:  # an unreadable store: the menu entry is disabled, the dialog says why
        return []


def chosen_series_ids(window: MainWindow) -> list[str]:
    """What to tick first: the series selected in the browser, else the one that is open."""
    chosen: list[str] = []
    if window.browser is not None:
        from workstation.gui.browser import SERIES_ROLE

        chosen = [
            item.data(0, SERIES_ROLE)
            for item in window.browser.tree.selectedItems()
            if item.data(0, SERIES_ROLE)
        ]
    model = window.model
    if not chosen and model is not None and model.volume.source is not None:
        chosen = [model.volume.source.stack_id]
    return chosen


def open_training_dialog(window: MainWindow, spec: Any) -> Any:
    """Show the training window for `spec` (one per analysis; shown again if already open)."""
    from workstation.gui.training_dialog import TrainingDialog

    dialogs: dict[str, Any] = window.__dict__.setdefault("training_dialogs", {})
    dialog = dialogs.get(spec.id)
    if dialog is None:
        dialog = TrainingDialog(spec, window.store_dir, chosen_series_ids(window), window)
        dialogs[spec.id] = dialog
    elif not dialog.running():
        dialog.picker.load(window.store_dir, chosen_series_ids(window) or dialog.picker.checked())
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()
    return dialog


def _series_items(tree: Any) -> list[Any]:
    from workstation.gui.browser import SERIES_ROLE

    found, stack = [], [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    while stack:
        item = stack.pop()
        if item.data(0, SERIES_ROLE):
            found.append(item)
        stack.extend(item.child(i) for i in range(item.childCount()))
    return found


# --- generated series into the store --------------------------------------------------------
def save_generated_series(
    store_dir: str | os.PathLike[str], entry: Any, outcome: Any, inputs: Any
) -> str:
    """Write the run's generated series as DICOM (new UIDs, synthetic patient, SYNTHETIC in the
    description: `write_results` does that) and copy them into the store's index. Returns a
    line for the status bar."""
    import shutil
    import tempfile

    from workstation.core.results import GeneratedSeries
    from workstation.dicom.index import index_paths
    from workstation.outputs import write_results
    from workstation.plugins.runner import run_info_for

    generated = [r for r in outcome.results if isinstance(r, GeneratedSeries)]
    if not generated:
        return ""
    # Written outside the store (the index never reads the store's own folders), then copied in.
    folder = Path(tempfile.mkdtemp(prefix="workstation-generated-"))
    try:
        write_results(generated, folder, run_info_for(entry, outcome, inputs, True, 0))
        summary = index_paths(store_dir, [folder], copy=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return (
        f"{len(generated)} synthetic series ({summary.instances_added} images) from "
        f"{entry.spec.id} saved to the store"
    )


class GeneratedSeriesSaver(QObject):
    """`save_generated_series` on a worker thread; `done(message, ok)`."""

    done = Signal(str, bool)

    def __init__(self, store_dir: Path, entry: Any, outcome: Any, inputs: Any) -> None:
        super().__init__()
        self.store_dir, self.entry, self.outcome, self.inputs = store_dir, entry, outcome, inputs

    def run(self) -> None:
        try:
            self.done.emit(
                save_generated_series(self.store_dir, self.entry, self.outcome, self.inputs), True
            )
        except Exception as error:  # said in the status bar; the results panel still has them
            self.done.emit(f"generated series not saved to the store: {error}", False)


class GeneratedSeriesSave(QObject):
    """Lives in the UI thread: runs a `GeneratedSeriesSaver` on its own thread, then says what
    happened in the status bar and refreshes the browser so the new series appear."""

    def __init__(self, window: MainWindow, entry: Any, outcome: Any, inputs: Any) -> None:
        super().__init__(window)
        self.window = window
        self.thread = QThread()
        self.saver = GeneratedSeriesSaver(window.store_dir, entry, outcome, inputs)
        self.saver.moveToThread(self.thread)
        self.thread.started.connect(self.saver.run)
        self.saver.done.connect(self._finished)  # queued: self lives in the UI thread
        self.thread.start()

    def running(self) -> bool:
        return self.thread.isRunning()

    def _finished(self, message: str, ok: bool) -> None:
        self.thread.quit()
        self.thread.wait()
        if message:
            self.window.statusBar().showMessage(message)
        if ok and self.window.browser is not None:
            self.window.browser.refresh()
        self.deleteLater()


def _save_generated_when_done(window: MainWindow, panel: Any, entry: Any, inputs: Any) -> None:
    """After this job (the panel runs one at a time) save its generated series."""

    def on_finished(outcome: Any) -> None:
        panel.finished.disconnect(on_finished)
        if getattr(outcome, "ok", False):
            GeneratedSeriesSave(window, entry, outcome, inputs)

    panel.finished.connect(on_finished)
