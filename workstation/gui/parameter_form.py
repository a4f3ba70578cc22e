"""A form generated from an analysis's declared parameters (ranges and help as tooltips) plus
the device choice; the same declarations make the CLI's flags."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

DEVICES = ("auto", "cpu", "cuda")


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


class ParameterDialog(QDialog):
    """Parameters and device for one run of `spec`."""

    def __init__(self, spec: Any, parent: QWidget | None = None) -> None:
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
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def values(self) -> dict[str, Any]:
        return {name: editor_value(editor) for name, editor in self.editors.items()}
