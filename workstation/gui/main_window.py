"""The main window: study browser, the MPR area (a series and, beside it, derived volumes with a
linked crosshair), the results and jobs panels, menus with shortcuts, settings kept in QSettings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QWidget,
)

from workstation.core.results import DerivedVolume, HeatMap, LabelMap, Result, TimeSeries
from workstation.core.volume import Volume
from workstation.gui.mpr_viewer import LAYOUTS, MprViewer
from workstation.gui.viewer_model import ViewerModel
from workstation.gui.window_level import COLOR_MAPS, CT_PRESETS, PRESET_SHORTCUTS


def series_key(volume: Volume, info: dict[str, Any] | None) -> str | None:
    """What measurements are kept under: the stored series id, else the opened file's path."""
    if volume.source is not None:
        return volume.source.stack_id
    return (info or {}).get("path")


def link_cursors(a: ViewerModel, b: ViewerModel) -> None:
    """Moving the crosshair in one series moves it in the other (same patient space)."""
    a.cursor_changed.connect(b.set_cursor)
    b.cursor_changed.connect(a.set_cursor)


class MainWindow(QMainWindow):
    """`store_dir` is the store the browser lists; `settings` defaults to the user's QSettings."""

    def __init__(
        self,
        store_dir: str | os.PathLike[str] | None = None,
        settings: QSettings | None = None,
        with_browser: bool = True,
    ) -> None:
        super().__init__()
        from workstation.store import resolve_store_dir

        self.store_dir = resolve_store_dir(store_dir)
        self.settings = settings or QSettings()
        self.setWindowTitle("Workstation")
        self.resize(1400, 850)
        self.docks: dict[str, QDockWidget] = {}
        self.models: list[ViewerModel] = []
        self.viewers: list[MprViewer] = []
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.placeholder = QLabel("Open a series from the browser, or drop a folder to import it.")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.splitter.addWidget(self.placeholder)
        self.setCentralWidget(self.splitter)
        self.layout_name = str(self.settings.value("viewer/layout", "1x3"))
        if self.layout_name not in LAYOUTS:
            self.layout_name = "1x3"
        self.browser = None
        if with_browser:
            from workstation.gui.browser import StudyBrowser

            self.browser = StudyBrowser(self.store_dir)
            self.browser.series_opened.connect(self.open_series)
            self.browser.status.connect(self.statusBar().showMessage)
            self._dock("Studies", self.browser, Qt.DockWidgetArea.LeftDockWidgetArea)
            self.browser.tree.currentItemChanged.connect(self._show_records_of_browser_item)
        from workstation.gui.results_panel import ResultsPanel

        self.results_panel = ResultsPanel()
        self.results_panel.setMinimumWidth(230)
        self.results_panel.changed.connect(self._refresh_overlays)
        self._dock("Results", self.results_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        from workstation.gui.tools import MeasurementsPanel

        self.measurements_panel = MeasurementsPanel(self.store_dir)
        self._dock("Measurements", self.measurements_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        from workstation.gui.records_panel import RecordsPanel

        self.records_panel = RecordsPanel(self.store_dir)
        self.records_panel.study_open_requested.connect(self.open_study)
        self._dock("Records", self.records_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.jobs_panel = None
        self._build_menus()
        from workstation.gui.pacs_menu import install_pacs_menu

        install_pacs_menu(self)  # PACS menu: query/retrieve dialog, listener switch
        self.statusBar().showMessage(f"store: {self.store_dir}")

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.docks[title] = dock
        return dock

    # --- opening --------------------------------------------------------------------------
    @property
    def model(self) -> ViewerModel | None:
        return self.models[0] if self.models else None

    @property
    def viewer(self) -> MprViewer | None:
        return self.viewers[0] if self.viewers else None

    def show_volume(self, volume: Volume, info: dict[str, Any] | None = None) -> ViewerModel:
        """Replace what is shown with `volume` (and close derived volumes beside it)."""
        for viewer in self.viewers:
            viewer.setParent(None)
            viewer.deleteLater()
        self.placeholder.hide()
        self.models, self.viewers = [], []
        model = self._add_viewer(volume, info)
        self.results_panel.set_model(model)
        self.measurements_panel.attach(list(self.viewer.views.values()), series_key(volume, info))
        if self.jobs_panel is not None:
            self.jobs_panel.set_selection(volume, info or {})
        for warning in volume.warnings[:3]:
            self.statusBar().showMessage(warning)
        source_patient = volume.source.patient_id if volume.source is not None else ""
        self.records_panel.show_patient((info or {}).get("patient_id") or source_patient)
        return model

    def _add_viewer(self, volume: Volume, info: dict[str, Any] | None) -> ViewerModel:
        model = ViewerModel(volume, info)
        viewer = MprViewer(model, self.layout_name)
        self.models.append(model)
        self.viewers.append(viewer)
        self.splitter.addWidget(viewer)
        return model

    def open_series(self, series_id: str) -> None:
        from workstation.gui.loading import open_target

        try:
            volume, info = open_target(series_id, self.store_dir)
        except Exception as error:  # shown, never a crash: the file or id is in the message
            QMessageBox.warning(self, "Cannot open series", str(error))
            return
        self.show_volume(volume, info)

    def open_study(self, study_uid: str) -> None:
        """Open the first series of a study (a study marker clicked in the records panel)."""
        from workstation.gui.records_panel import first_series_of_study

        series_id = first_series_of_study(self.store_dir, study_uid)
        if series_id is None:
            self.statusBar().showMessage(f"study {study_uid} is not in the image index")
            return
        self.open_series(series_id)

    def _show_records_of_browser_item(self, item, _previous=None) -> None:
        from workstation.gui.records_panel import patient_of_browser_item

        patient_id = patient_of_browser_item(self.store_dir, item)
        if patient_id:
            self.records_panel.show_patient(patient_id)

    def show_results(self, results: list[Result]) -> None:
        """Label and heat maps as overlays; derived volumes beside the source; the rest in the
        results panel."""
        model = self.model
        for result in results:
            if isinstance(result, (LabelMap, HeatMap)) and model is not None:
                model.add_result(result)
            elif isinstance(result, DerivedVolume) and model is not None:
                derived = self._add_viewer(
                    result.volume.resample_to(model.volume, order=1)
                    if not result.volume.geometry.is_close(model.volume.geometry)
                    else result.volume,
                    {**model.info, "series_description": result.series_description or result.name},
                )
                derived.set_window(model.window)
                link_cursors(model, derived)
            elif isinstance(result, TimeSeries):
                self.records_panel.show_time_series(result)
            self.results_panel.add_result(result)

    def _refresh_overlays(self) -> None:
        if self.model is not None:
            self.model.overlay_changed()

    # --- menus ----------------------------------------------------------------------------
    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "&Import folder...", self.import_folder_dialog, "Ctrl+I")
        self._action(file_menu, "&Open file or folder...", self.open_path_dialog, "Ctrl+O")
        self._action(file_menu, "Save &screenshot...", self.save_screenshot_dialog, "Ctrl+Shift+S")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        view_menu = bar.addMenu("&View")
        group = QActionGroup(self)
        for n, name in enumerate(LAYOUTS, start=1):
            action = self._action(
                view_menu, f"Layout {name}", lambda n=name: self.set_layout(n), f"Ctrl+{n}"
            )
            action.setCheckable(True)
            action.setChecked(name == self.layout_name)
            group.addAction(action)
        view_menu.addSeparator()
        self.crosshair_action = self._action(view_menu, "&Crosshair", self._toggle_crosshair, "C")
        self.crosshair_action.setCheckable(True)
        self.crosshair_action.setChecked(True)
        self.identity_action = self._action(
            view_menu, "Hide patient &identity", self._toggle_identity, "Ctrl+H"
        )
        self.identity_action.setCheckable(True)
        self._action(view_menu, "C&ine", self._toggle_cine, "Space")
        self._action(view_menu, "&Reset zoom", self._reset_views, "R")

        window_menu = bar.addMenu("&Window")
        for name, window in CT_PRESETS.items():
            self._action(
                window_menu,
                f"{name} (W {window.width:g} L {window.center:g})",
                lambda n=name: self.apply_preset(n),
                PRESET_SHORTCUTS[name],
            )
        self._action(window_menu, "Auto (MR)", lambda: self.apply_preset("Auto"), "A")
        self._action(window_menu, "DICOM default", lambda: self.apply_preset("Default"), "D")
        self._action(window_menu, "&Invert", self._toggle_invert, "I")
        colours = window_menu.addMenu("Colour map")
        for name in COLOR_MAPS:
            self._action(colours, name, lambda n=name: self.model and self.model.set_colormap(n))

        self.analyses_menu = bar.addMenu("&Analyses")
        self.analyses_menu.aboutToShow.connect(self._fill_analyses_menu)
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&About", self.show_about)

    def _action(self, menu, text, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda _checked=False: slot())
        menu.addAction(action)
        return action

    def set_layout(self, name: str) -> None:
        self.layout_name = name
        self.settings.setValue("viewer/layout", name)
        for viewer in self.viewers:
            viewer.set_layout(name)

    def apply_preset(self, name: str) -> None:
        for model in self.models:
            model.apply_preset(name)

    def _toggle_invert(self) -> None:
        for model in self.models:
            model.set_invert(not model.invert)

    def _toggle_crosshair(self) -> None:
        for viewer in self.viewers:
            viewer.set_crosshair_visible(self.crosshair_action.isChecked())

    def _toggle_identity(self) -> None:
        for model in self.models:
            model.set_show_identity(not self.identity_action.isChecked())
        self.records_panel.set_show_identity(not self.identity_action.isChecked())

    def _toggle_cine(self) -> None:
        if self.viewer is not None:
            self.viewer.set_cine(not self.viewer.cine_running)

    def _reset_views(self) -> None:
        for viewer in self.viewers:
            for view in viewer.views.values():
                view.reset_view()

    def _fill_analyses_menu(self) -> None:
        from workstation.gui.analyses import fill_analyses_menu

        fill_analyses_menu(self, self.analyses_menu)

    # --- dialogs --------------------------------------------------------------------------
    def import_folder_dialog(self) -> None:
        start = str(self.settings.value("browser/last_folder", str(Path.home())))
        folder = QFileDialog.getExistingDirectory(self, "Import a folder", start)
        if folder and self.browser is not None:
            self.settings.setValue("browser/last_folder", folder)
            self.browser.import_paths([folder])

    def open_path_dialog(self) -> None:
        start = str(self.settings.value("browser/last_folder", str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(
            self, "Open an image", start, "Images (*.nii *.nii.gz *.dcm);;All files (*)"
        )
        if path:
            from workstation.gui.loading import open_path

            try:
                self.show_volume(*open_path(Path(path)))
            except Exception as error:  # named file in the message
                QMessageBox.warning(self, "Cannot open", str(error))

    def save_screenshot_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save screenshot", "screenshot.png", "PNG (*.png)"
        )
        if path:
            self.grab().save(path)

    def show_about(self) -> None:
        from workstation.gui.about import about_text

        QMessageBox.about(self, "About Workstation", about_text())

    def closeEvent(self, event) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        if self.jobs_panel is not None:
            self.jobs_panel.shutdown()
        super().closeEvent(event)
