"""A form generated from an analysis's declared parameters (ranges and help as tooltips) plus
the device choice and, for an analysis with a model, which weights to use; the same
declarations make the CLI's flags (`--param`, `--device`, `--weights`)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from workstation.plugins.training import MODEL_FILE

DEVICES = ("auto", "cpu", "cuda")
OTHER = "Other..."
OTHER_FOLDER = "Other folder..."
"""A model folder, e.g. a MONAI bundle (configs/, models/model.pt): a primary form of weights."""
_ASK = (OTHER, OTHER_FOLDER)  # entries that ask the user, never weights themselves
_TOOLTIP = Qt.ItemDataRole.ToolTipRole


def editor_for(parameter: Any) -> QWidget:
    """The widget for one `Parameter`, set to its default."""
    kind = parameter.type
    if kind == "int":
        editor: QWidget = QSpinBox()
        editor.setRange(
            int(parameter.min if parameter.min is not None else -(2**31) + 1),
            int(parameter.max if parameter.max is not None else 2**31 - 1),
        )
        editor.setValue(int(parameter.default or 0))
    elif kind == "float":
        editor = QDoubleSpinBox()
        editor.setDecimals(4)
        editor.setRange(
            parameter.min if parameter.min is not None else -1e12,
            parameter.max if parameter.max is not None else 1e12,
        )
        editor.setValue(float(parameter.default or 0.0))
    elif kind == "bool":
        editor = QCheckBox()
        editor.setChecked(bool(parameter.default))
    elif kind == "choice":
        editor = QComboBox()
        editor.addItems(list(parameter.choices))
        if parameter.default is not None:
            editor.setCurrentText(str(parameter.default))
    else:
        editor = QLineEdit(str(parameter.default or ""))
    editor.setToolTip(parameter.help)
    return editor


def editor_value(editor: QWidget) -> Any:
    if isinstance(editor, (QSpinBox, QDoubleSpinBox)):
        return editor.value()
    if isinstance(editor, QCheckBox):
        return editor.isChecked()
    if isinstance(editor, QComboBox):
        return editor.currentText()
    return editor.text()  # type: ignore[attr-defined]


def trained_models(store_dir: str | os.PathLike[str] | None, analysis_id: str) -> list[Path]:
    """The model files (`training.MODEL_FILE`) of the model folders trained in this store
    (<store>/models/<name>/) for `analysis_id`: its training.json names the analysis (a folder
    without one counts when it is named after the analysis, as the training window's default
    folder is)."""
    if store_dir is None:
        return []
    found = []
    root = Path(store_dir) / "models"
    try:
        folders = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError:  # no models trained here yet
        return []
    for folder in folders:
        if not (folder / MODEL_FILE).is_file():
            continue
        try:
            trained_for = json.loads((folder / "training.json").read_text()).get("analysis_id")
        except (OSError, ValueError, AttributeError):
            trained_for = folder.name
        if trained_for == analysis_id:
            found.append(folder / MODEL_FILE)
    return found


def _trained_label(path: Path) -> str:
    from workstation.plugins.training import read_metrics

    try:
        rows = read_metrics(path.parent)
    except (OSError, ValueError):
        rows = []
    epoch = f", epoch {int(rows[-1]['epoch'])}" if rows else ""
    return f"Trained here: {path.parent.name}{epoch}"


class WeightsChoice(QComboBox):
    """Which weights a run uses: the analysis's own (the shipped demo weights, listed first and
    the default), a model trained in this store, any file picked with "Other..." or any
    folder (a MONAI bundle) picked with "Other folder..."."""

    def __init__(
        self,
        spec: Any,
        store_dir: str | os.PathLike[str] | None = None,
        weights: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        from workstation.plugins.declarations import is_package_resource, resolve_weights

        shipped = is_package_resource(spec.weights)
        self._declared = resolve_weights(spec.weights)
        self.addItem("Shipped demo weights" if shipped else f"Declared: {spec.weights}", None)
        self.setItemData(0, f"{spec.weights}", _TOOLTIP)
        for path in trained_models(store_dir, spec.id):
            self._add(path, _trained_label(path))
        self.addItem(OTHER, OTHER)
        self.setItemData(self.count() - 1, "a checkpoint file", _TOOLTIP)
        self.addItem(OTHER_FOLDER, OTHER_FOLDER)
        self.setItemData(self.count() - 1, "a model folder, e.g. a MONAI bundle", _TOOLTIP)
        self.pick_file: Callable[[], str] = self._ask_for_file
        """Asks for a weights file; returns "" when the user gives none (tests replace it)."""
        self.pick_folder: Callable[[], str] = self._ask_for_folder
        """Asks for a weights folder (a MONAI bundle); returns "" when the user gives none."""
        self._previous = 0
        if weights is not None:
            self.choose(weights)
        self.currentIndexChanged.connect(self._changed)

    def path(self) -> str | None:
        """The chosen weights file, or None for the analysis's own weights."""
        data = self.currentData()
        return None if data is None or data in _ASK else str(data)

    def choose(self, weights: str | os.PathLike[str]) -> None:
        """Select `weights` (added to the list when it is not there yet). The analysis's own
        file, picked by path, is the first entry: results from it are still said to be DEMO."""
        path = Path(weights).absolute()
        if self._declared is not None and path == self._declared.absolute():
            self.setCurrentIndex(0)
            return
        for index in range(self.count()):
            data = self.itemData(index)
            if data is not None and data not in _ASK and Path(data) == path:
                self.setCurrentIndex(index)
                return
        kind = "Folder" if path.is_dir() else "File"
        self.setCurrentIndex(self._add(path, f"{kind}: {path.name}"))

    def _add(self, path: Path, label: str) -> int:
        asks = [i for i in (self.findData(OTHER), self.findData(OTHER_FOLDER)) if i >= 0]
        index = min(asks) if asks else self.count()
        self.insertItem(index, label, str(path))
        self.setItemData(index, str(path), _TOOLTIP)
        return index

    def _changed(self, index: int) -> None:
        asked = self.itemData(index)
        if asked not in _ASK:
            self._previous = index
            self.setToolTip(str(self.itemData(index, _TOOLTIP) or ""))
            return
        chosen = self.pick_folder() if asked == OTHER_FOLDER else self.pick_file()
        self.blockSignals(True)
        try:
            if chosen:
                self.choose(chosen)
            else:
                self.setCurrentIndex(self._previous)
        finally:
            self.blockSignals(False)
        self._previous = self.currentIndex()
        self.setToolTip(str(self.itemData(self.currentIndex(), _TOOLTIP) or ""))

    def _ask_for_file(self) -> str:
        chosen, _ = QFileDialog.getOpenFileName(
            self, "Weights", "", "Model weights (*.pt *.pth *.ckpt *.ts);;All files (*)"
        )
        return chosen

    def _ask_for_folder(self) -> str:
        return QFileDialog.getExistingDirectory(self, "Weights folder (e.g. a MONAI bundle)", "")


class ParameterDialog(QDialog):
    """Parameters and device for one run of `spec`, and its weights when it declares any:
    `store_dir` lists the models trained in that store, `weights` is chosen first."""

    def __init__(
        self,
        spec: Any,
        parent: QWidget | None = None,
        *,
        store_dir: str | os.PathLike[str] | None = None,
        weights: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"{spec.title} {spec.version}")
        self.spec = spec
        form = QFormLayout(self)
        if spec.description:
            description = QLabel(spec.description)
            description.setWordWrap(True)
            form.addRow(description)
        self.editors: dict[str, QWidget] = {}
        for parameter in spec.parameters:
            editor = editor_for(parameter)
            self.editors[parameter.name] = editor
            form.addRow(parameter.display_label, editor)
        self.device = QComboBox()
        self.device.addItems(list(DEVICES))
        self.device.setToolTip(f"this analysis runs on: {spec.device}")
        form.addRow("Device", self.device)
        self.weights: WeightsChoice | None = None
        if spec.weights is not None:
            self.weights = WeightsChoice(spec, store_dir, weights)
            form.addRow("Weights", self.weights)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def values(self) -> dict[str, Any]:
        return {name: editor_value(editor) for name, editor in self.editors.items()}

    def weights_path(self) -> str | None:
        """The weights file chosen, or None for the analysis's own (e.g. demo) weights."""
        return self.weights.path() if self.weights is not None else None
