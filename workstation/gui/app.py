"""The QApplication: one per process, dark theme, organisation names for QSettings."""

from __future__ import annotations

import sys

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

ORGANIZATION = "workstation"
APPLICATION = "workstation"


def application() -> QApplication:
    """The running QApplication, created with the dark theme the first time."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setOrganizationName(ORGANIZATION)
        app.setApplicationName(APPLICATION)
        apply_dark_theme(app)
    return app  # type: ignore[return-value]


def apply_dark_theme(app: QApplication) -> None:
    """Fusion style with the dark palette for the whole application."""
    app.setStyle("Fusion")
    app.setPalette(dark_palette())


def dark_palette() -> QPalette:
    """A dark palette: reading rooms are dim and a bright frame around images dazzles."""
    palette = QPalette()
    base, window, text = QColor(30, 30, 32), QColor(45, 45, 48), QColor(220, 220, 220)
    for role, colour in (
        (QPalette.ColorRole.Window, window),
        (QPalette.ColorRole.WindowText, text),
        (QPalette.ColorRole.Base, base),
        (QPalette.ColorRole.AlternateBase, window),
        (QPalette.ColorRole.Text, text),
        (QPalette.ColorRole.Button, window),
        (QPalette.ColorRole.ButtonText, text),
        (QPalette.ColorRole.ToolTipBase, window),
        (QPalette.ColorRole.ToolTipText, text),
        (QPalette.ColorRole.Highlight, QColor(42, 110, 190)),
        (QPalette.ColorRole.HighlightedText, QColor(255, 255, 255)),
    ):
        palette.setColor(role, colour)
    # Disabled controls must look disabled: greyed text, placeholder text readable but quiet.
    disabled, placeholder = QColor(115, 115, 118), QColor(140, 140, 145)
    for role in (
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
        QPalette.ColorRole.HighlightedText,
    ):
        palette.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Button, QColor(38, 38, 40))
    palette.setColor(QPalette.ColorRole.PlaceholderText, placeholder)
    return palette
