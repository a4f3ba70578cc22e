"""The study browser: patients -> studies -> series from the store's catalog, with a search box,
synthetic series marked, and folder import (menu or drag and drop) indexed in the background."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QLineEdit,
    QProgressBar,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

SERIES_ROLE = Qt.ItemDataRole.UserRole + 1
SYNTHETIC_COLOUR = QColor(240, 170, 60)


class ImportJob(QObject):
    """Indexes folders into the store on a worker thread, reporting progress."""

    progress = Signal(int, int)
    finished = Signal(str)
    failed = Signal(str)

    def __init__(self, store_dir: Path, paths: list[str]) -> None:
        super().__init__()
        self.store_dir, self.paths = store_dir, paths

    def run(self) -> None:
        from workstation.dicom.index import index_paths

        try:
            summary = index_paths(self.store_dir, self.paths, progress=self.progress.emit)
        except Exception as error:  # shown to the user; the index keeps its last commit
            self.failed.emit(f"import of {', '.join(self.paths)} failed: {error}")
            return
        self.finished.emit(summary.line())


class StudyBrowser(QWidget):
    """Double-click (or Enter) on a series emits `series_opened(series_id)`."""

    series_opened = Signal(str)
    status = Signal(str)

    def __init__(self, store_dir: str | os.PathLike[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store_dir = Path(store_dir)
        self.search = QLineEdit(placeholderText="Search patient, study, series, modality")
        self.search.textChanged.connect(self.apply_filter)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Name", "Modality", "Description", "Size"])
        self.tree.setColumnWidth(0, 200)
        self.tree.itemActivated.connect(self._on_activated)
        self.progress = QProgressBar()
        self.progress.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.search)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.progress)
        self.setAcceptDrops(True)
        self._thread: QThread | None = None
        self._job: ImportJob | None = None
        self.refresh()

    # --- content --------------------------------------------------------------------------
    def catalog_tree(self) -> list[dict[str, Any]]:
        from workstation.dicom.catalog import Catalog

        with Catalog(self.store_dir) as catalog:
            return catalog.tree()

    def refresh(self) -> None:
        self.tree.clear()
        try:
            patients = self.catalog_tree()
        except Exception as error:  # an unreadable store is reported, not fatal
            self.status.emit(f"cannot read the store {self.store_dir}: {error}")
            return
        for patient in patients:
            name = str(patient.get("patient_name") or "").replace("^", " ")
            p_item = QTreeWidgetItem([f"{name} ({patient['patient_id']})", "", "", ""])
            for study in patient["studies"]:
                s_item = QTreeWidgetItem(
                    [str(study.get("date") or ""), "", str(study.get("description") or ""), ""]
                )
                for series in study["series"]:
                    label = f"#{series.get('series_number') or ''} {series['series_id'][-12:]}"
                    description = str(series.get("description") or "")
                    if series.get("synthetic"):
                        description = f"[SYNTHETIC] {description}"
                    item = QTreeWidgetItem(
                        [label, series.get("modality") or "", description, series["dimensions"]]
                    )
                    item.setData(0, SERIES_ROLE, series["series_id"])
                    if series.get("synthetic"):
                        for column in range(4):
                            item.setForeground(column, QBrush(SYNTHETIC_COLOUR))
                    s_item.addChild(item)
                p_item.addChild(s_item)
            self.tree.addTopLevelItem(p_item)
        self.tree.expandAll()
        self.apply_filter(self.search.text())

    def apply_filter(self, text: str) -> None:
        """Show series whose row, study or patient contains `text` (case-insensitive)."""
        needle = text.strip().lower()
        for p in range(self.tree.topLevelItemCount()):
            patient = self.tree.topLevelItem(p)
            patient_hit = needle in _row_text(patient)
            patient_shown = False
            for s in range(patient.childCount()):
                study = patient.child(s)
                study_hit = patient_hit or needle in _row_text(study)
                study_shown = False
                for k in range(study.childCount()):
                    series = study.child(k)
                    shown = not needle or study_hit or needle in _row_text(series)
                    series.setHidden(not shown)
                    study_shown |= shown
                study.setHidden(not study_shown)
                patient_shown |= study_shown
            patient.setHidden(not patient_shown)

    def visible_series(self) -> list[str]:
        out = []
        for p in range(self.tree.topLevelItemCount()):
            patient = self.tree.topLevelItem(p)
            for s in range(patient.childCount()):
                for k in range(patient.child(s).childCount()):
                    item = patient.child(s).child(k)
                    if not item.isHidden() and not patient.isHidden():
                        out.append(item.data(0, SERIES_ROLE))
        return out

    def _on_activated(self, item: QTreeWidgetItem, _column: int) -> None:
        series_id = item.data(0, SERIES_ROLE)
        if series_id:
            self.series_opened.emit(series_id)

    # --- import ---------------------------------------------------------------------------
    def import_paths(self, paths: list[str]) -> None:
        """Index `paths` in the background; the tree refreshes when done."""
        if self._thread is not None:
            self.status.emit("an import is already running")
            return
        self._thread = QThread(self)
        self._job = ImportJob(self.store_dir, paths)
        self._job.moveToThread(self._thread)
        self._thread.started.connect(self._job.run)
        self._job.progress.connect(self._on_progress)
        self._job.finished.connect(self._on_import_done)
        self._job.failed.connect(self._on_import_done)
        self.progress.setRange(0, 0)
        self.progress.show()
        self.status.emit(f"importing {', '.join(paths)}")
        self._thread.start()

    def import_running(self) -> bool:
        return self._thread is not None

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _on_import_done(self, message: str) -> None:
        self.progress.hide()
        if self._thread is not None:
            self._thread.quit()
            self._thread.wait()
        self._thread = None
        self._job = None
        self.status.emit(message)
        self.refresh()

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            self.import_paths(paths)
            event.acceptProposedAction()


def _row_text(item: QTreeWidgetItem) -> str:
    return " ".join(item.text(c) for c in range(item.columnCount())).lower()
