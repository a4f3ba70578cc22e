"""The Analyses menu: built from the plugin registry, offering only analyses whose inputs match
what is open (an image series, a patient), each asking for its parameters, a device and, for an
analysis with a model, its weights (shipped, trained in this store, or any file); a "Train..."
entry for each trainable analysis. An analysis that generates series runs with an output folder
in the store (<store>/results/<analysis>/<run>): the runner writes them there as DICOM with
run.json and indexes them, so they appear in the study browser (marked synthetic) and the run
record names the folder and the weights."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def start_from_dialog(
    window: MainWindow, spec: Any, registry: Any = None, weights: str | None = None
) -> None:
    """Ask for `spec`'s parameters, device and weights (`weights` chosen first), then run it."""
    from workstation.gui.parameter_form import ParameterDialog

    dialog = ParameterDialog(spec, window, store_dir=window.store_dir, weights=weights)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return
    start(
        window,
        spec.id,
        dialog.values(),
        dialog.device.currentText(),
        registry,
        weights=dialog.weights_path(),
    )


def results_dir(store_dir: str | os.PathLike[str], analysis_id: str, run_id: str) -> Path:
    """The folder for one run's files inside the store: <store>/results/<analysis>/<run_id>,
    named by the id the runner records, so the folder, run.json and the run history agree."""
    return Path(store_dir) / "results" / analysis_id / run_id


def generates_series(spec: Any) -> bool:
    return "generated_series" in {str(kind) for kind in spec.returns}


def start(
    window: MainWindow,
    analysis_id: str,
    params: dict,
    device: str = "auto",
    registry: Any = None,
    *,
    weights: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
) -> None:
    """Run `analysis_id` in the jobs panel. `weights`: a file the user chose (None: the
    analysis's own). An analysis that generates series gets a results folder in the store
    when `out_dir` is None, so its series are written, indexed and listed in the browser."""
    from workstation.plugins.runner import new_run_id

    panel = ensure_jobs_panel(window, registry)
    entry = panel.runner.registry.analyses.get(analysis_id)
    generated = entry is not None and generates_series(entry.spec)
    run_id = new_run_id()  # made once: the results folder is named by the id the run records
    if generated and out_dir is None:
        out_dir = results_dir(window.store_dir, analysis_id, run_id)
    panel.start(
        analysis_id,
        inputs_for(window),
        params,
        device,
        weights=weights,
        out_dir=out_dir,
        run_id=run_id,
    )
    if generated:
        _show_generated_when_done(window, panel)


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
        action.triggered.connect(lambda _c=False, s=spec: open_training_dialog(window, s, registry))


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


def open_training_dialog(window: MainWindow, spec: Any, registry: Any = None) -> Any:
    """Show the training window for `spec` (one per analysis; shown again if already open).
    Its "Generate from this model" opens `spec`'s form with the new model's weights chosen."""
    from workstation.gui.training_dialog import TrainingDialog

    dialogs: dict[str, Any] = window.__dict__.setdefault("training_dialogs", {})
    dialog = dialogs.get(spec.id)
    if dialog is None:
        dialog = TrainingDialog(spec, window.store_dir, chosen_series_ids(window), window)
        dialog.generate_requested.connect(
            lambda weights, s=spec: start_from_dialog(window, s, registry, weights)
        )
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


# --- generated series into the browser -----------------------------------------------------
def generated_message(outcome: Any) -> str:
    """What the status bar says once a generating run has ended."""
    if not getattr(outcome, "ok", False):
        return ""
    if outcome.error:  # written, but the index could not take them
        return f"{outcome.analysis_id}: {outcome.error}"
    if not outcome.indexed:
        return f"{outcome.analysis_id} generated no series"
    series = sum(1 for r in outcome.results if getattr(r, "kind", "") == "generated_series")
    demo = " with the shipped demo weights" if outcome.demo_weights else ""
    return (
        f"{series} synthetic series ({len(outcome.indexed)} images) from {outcome.analysis_id}"
        f"{demo} added to the store; files and run.json in {outcome.out_dir}"
    )


def _show_generated_when_done(window: MainWindow, panel: Any) -> None:
    """After this job (the panel runs one at a time) list its series in the browser."""

    def on_finished(outcome: Any) -> None:
        panel.finished.disconnect(on_finished)
        message = generated_message(outcome)
        if message:
            window.statusBar().showMessage(message)
        if getattr(outcome, "indexed", None) and window.browser is not None:
            window.browser.refresh()

    panel.finished.connect(on_finished)
