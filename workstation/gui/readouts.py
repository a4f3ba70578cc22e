"""What a view writes over the image: orientation letters at the middle of each edge, patient and
study text in the top corners (hidden by the identity toggle, for teaching screenshots), window,
slice and the cursor readout in the bottom corners."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter

if TYPE_CHECKING:
    from workstation.gui.view_widget import SliceView
    from workstation.gui.viewer_model import ViewerModel

LETTER_COLOR = QColor(255, 210, 60)
TEXT_COLOR = QColor(220, 220, 220)


def readout_text(model: ViewerModel, point: np.ndarray) -> str:
    """LPS position in mm, voxel index, value in modality units and overlay values."""
    position = f"({point[0]:.1f}, {point[1]:.1f}, {point[2]:.1f}) mm"
    ijk = model.voxel_at(point)
    if ijk is None:
        return position
    units = model.info.get("units") or ("HU" if model.info.get("modality") == "CT" else "")
    value = model.value_at(ijk)
    shown = f"{value:.0f}" if float(value).is_integer() else f"{value:.4g}"
    parts = [position, f"[{ijk[0]}, {ijk[1]}, {ijk[2]}]", f"{shown} {units}".strip()]
    parts += [text for o in model.overlays if o.visible and (text := o.value_at(ijk))]
    return "  ".join(parts)


def identity_lines(info: dict[str, Any]) -> list[str]:
    """Top-left text: patient name, id, birth date; top-right: study and series."""
    return [
        line
        for line in (
            str(info.get("patient_name") or "").replace("^", " ").strip(),
            f"ID {info['patient_id']}" if info.get("patient_id") else "",
            f"DOB {info['birth_date']}" if info.get("birth_date") else "",
        )
        if line
    ]


def study_lines(info: dict[str, Any]) -> list[str]:
    return [
        str(line)
        for line in (
            info.get("study_description"),
            info.get("study_date"),
            info.get("series_description") or info.get("description"),
            info.get("modality"),
            "SYNTHETIC" if info.get("synthetic") else None,
        )
        if line
    ]


def corner_texts(view: SliceView) -> dict[str, list[str]]:
    """The four corners' lines for a view; identity lines are dropped when hidden."""
    model = view.model
    identity = identity_lines(model.info) if model.show_identity else []
    study = (
        study_lines(model.info)
        if model.show_identity
        else [
            line
            for line in study_lines(model.info)
            if line in (model.info.get("modality"), "SYNTHETIC")
        ]
    )
    position = float(np.dot(model.cursor, view.grid.axes.normal))  # mm along the scroll axis
    return {
        "top_left": [view.plane.value.capitalize(), *identity],
        "top_right": study,
        "bottom_left": [
            f"Slice {view.slice_index + 1}/{view.grid.slices}  ({position:.1f} mm)",
            model.window.label() + (" inverted" if model.invert else ""),
        ],
        "bottom_right": [],
    }


def paint_view_texts(painter: QPainter, view: SliceView, readout: str) -> None:
    """Letters and corner texts in viewport pixels (unaffected by zoom and pan)."""
    painter.setFont(view.text_font())
    metrics = QFontMetrics(painter.font())
    width, height = view.viewport().width(), view.viewport().height()
    margin = 4
    letters = view.letters
    painter.setPen(LETTER_COLOR)
    line_h = metrics.height()
    painter.drawText(
        QRect(margin, 0, 60, height),
        Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
        letters.left,
    )
    painter.drawText(
        QRect(width - 60 - margin, 0, 60, height),
        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
        letters.right,
    )
    painter.drawText(
        QRect(0, margin, width, line_h),
        Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
        letters.top,
    )
    painter.drawText(
        QRect(0, height - line_h - margin, width, line_h),
        Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom,
        letters.bottom,
    )

    painter.setPen(TEXT_COLOR)
    texts = corner_texts(view)
    if readout:
        texts["bottom_right"] = [readout]
    half = max(width // 2 - metrics.horizontalAdvance("MM"), 20)
    for corner, lines in texts.items():
        top = corner.startswith("top")
        left = corner.endswith("left")
        align = Qt.AlignmentFlag.AlignLeft if left else Qt.AlignmentFlag.AlignRight
        # a bottom readout may use the full width when the bottom-left lines are short
        room = width - 2 * margin if corner == "bottom_right" else half
        x = margin if left else width - margin - room
        for n, line in enumerate(lines):
            y = margin + n * line_h if top else height - margin - (len(lines) - n) * line_h
            if corner == "bottom_right" and y > height - margin - 3 * line_h:
                y = height - margin - 3 * line_h - (len(lines) - n - 1) * line_h
            text = metrics.elidedText(line, Qt.TextElideMode.ElideRight, room)
            painter.drawText(QRect(x, y, room, line_h), align | Qt.AlignmentFlag.AlignVCenter, text)
