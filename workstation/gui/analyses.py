"""The Analyses menu: built from the plugin registry, offering only analyses whose inputs match
what is open (an image series, a patient), each asking for its parameters and a device."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QDialog, QDockWidget, QMenu

if TYPE_CHECKING:
    from workstation.gui.main_window import MainWindow


def matches_selection(spec: Any, has_volume: bool, has_patient: bool) -> bool:
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
    panel.start(analysis_id, inputs_for(window), params, device)
