"""The list of the store's series with a tick box each: what a model is trained on. Synthetic
series are marked as in the study browser, so nobody trains on generated images unknowingly."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget

SERIES_ROLE = Qt.ItemDataRole.UserRole + 1
SYNTHETIC_COLOUR = QColor(240, 170, 60)


def series_rows(store_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every series (stack) in the store, with its patient id, in the catalog's order."""
    from workstation.dicom.catalog import Catalog

    rows = []
    with Catalog(store_dir) as catalog:
        for patient in catalog.tree():
            for study in patient["studies"]:
                for series in study["series"]:
                    rows.append({**series, "patient_id": patient["patient_id"]})
    return rows


def row_text(series: dict[str, Any]) -> str:
    """ "[SYNTHETIC] CT #2 48x48 x 20: description": what training checks first (modality,
    slice size, slice count), then what the series is."""
    number = series.get("series_number")
    parts = (
        "[SYNTHETIC]" if series.get("synthetic") else "",
        str(series.get("modality") or "?"),
        f"#{number}" if number is not None else "",
        f"{series['columns']}x{series['rows']} x {series['slices']}:",
        str(series.get("description") or "(no description)"),
    )
    return " ".join(part for part in parts if part)


class SeriesPicker(QListWidget):
    """`selection_changed()` fires when a tick changes; `checked()` lists the ticked ids."""

    selection_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.itemChanged.connect(lambda _item: self.selection_changed.emit())
        self.problem = ""

    def load(self, store_dir: str | os.PathLike[str], ticked: Iterable[str] = ()) -> None:
        """List the store's series, ticking those in `ticked`."""
        wanted = set(ticked)
        self.blockSignals(True)
        self.clear()
        try:
            rows = series_rows(store_dir)
        except Exception as error:  # an unreadable store is said in the list, not raised
            rows = []
            self.problem = f"cannot read the store {store_dir}: {error}"
        for series in rows:
            item = QListWidgetItem(row_text(series))
            item.setData(SERIES_ROLE, series["series_id"])
            item.setToolTip(
                f"{row_text(series)}\npatient {series['patient_id']}\n{series['series_id']}"
            )
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            ticked_now = series["series_id"] in wanted
            item.setCheckState(Qt.CheckState.Checked if ticked_now else Qt.CheckState.Unchecked)
            if series.get("synthetic"):
                item.setForeground(QBrush(SYNTHETIC_COLOUR))
            self.addItem(item)
        self.blockSignals(False)
        self.selection_changed.emit()

    def series_ids(self) -> list[str]:
        return [self.item(row).data(SERIES_ROLE) for row in range(self.count())]

    def checked(self) -> list[str]:
        return [
            self.item(row).data(SERIES_ROLE)
            for row in range(self.count())
            if self.item(row).checkState() == Qt.CheckState.Checked
        ]

    def set_checked(self, series_ids: Iterable[str]) -> None:
        wanted = set(series_ids)
        for row in range(self.count()):
            item = self.item(row)
            state = (
                Qt.CheckState.Checked
                if item.data(SERIES_ROLE) in wanted
                else Qt.CheckState.Unchecked
            )
            item.setCheckState(state)
