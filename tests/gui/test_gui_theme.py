"""The dark theme: a disabled button must look disabled, or users click controls that do nothing."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def text_brightness(widget) -> float:
    """Brightest grey level of the rendered widget: its label text on the dark button face."""
    image = widget.grab().toImage()
    from PySide6.QtGui import QImage

    image = image.convertToFormat(QImage.Format.Format_Grayscale8)
    width, height, stride = image.width(), image.height(), image.bytesPerLine()
    pixels = np.frombuffer(image.constBits(), np.uint8, height * stride).reshape(height, stride)
    inner = pixels[height // 4 : height - height // 4, 10 : width - 10]  # the label, not the bevel
    return float(np.percentile(inner, 99))


def test_disabled_button_text_is_visibly_dimmer(qtbot, tmp_path) -> None:
    from PySide6.QtWidgets import QHBoxLayout, QPushButton, QWidget

    from workstation.gui.app import dark_palette

    row = QWidget()
    row.setPalette(dark_palette())  # the test's QApplication may predate the workstation's theme
    layout = QHBoxLayout(row)
    enabled, disabled = QPushButton("Retrieve selected"), QPushButton("Retrieve selected")
    disabled.setEnabled(False)
    layout.addWidget(enabled)
    layout.addWidget(disabled)
    qtbot.addWidget(row)
    row.resize(420, 60)
    row.show()
    qtbot.waitExposed(row)
    row.grab().save(str(tmp_path / "buttons.png"))
    bright, dim = text_brightness(enabled), text_brightness(disabled)
    assert bright > 180
    assert dim < bright - 60, (bright, dim)
