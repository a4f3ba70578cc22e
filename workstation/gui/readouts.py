"""What a view writes over the image: orientation letters at the middle of each edge, patient and
study text in the top corners (hidden by the identity toggle, for teaching screenshots), window,
slice and the cursor readout in the bottom corners."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter

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


class ViewTexts:
    """The letters and corner lines of one view, each kept as a small pre-rendered image.

    Laying text out and rasterising its glyphs costs more than copying pixels, and on a slice
    change only the slice line (and the readout) differ from the last paint: every other line is
    blitted from the image made the first time it was shown, and a slice seen before (scrolling
    back, cine) finds its whole set of lines ready."""

    CACHE_LIMIT = 256

    def __init__(self) -> None:
        self._rendered: dict[tuple, tuple[QPoint, QImage]] = {}
        self._font_key = ""
        self._screens: dict[tuple, list[tuple[QPoint, QImage]]] = {}  # lines placed per state

    def _line(
        self,
        font: QFont,
        metrics: QFontMetrics,
        ratio: float,
        colour: QColor,
        line: str,
        rect: QRect,
        align: Qt.AlignmentFlag,
    ) -> tuple[QPoint, QImage]:
        key = (line, colour.rgba(), rect.x(), rect.y(), rect.width(), rect.height(), int(align))
        found = self._rendered.get(key)
        if found is not None:
            return found
        if len(self._rendered) >= self.CACHE_LIMIT:
            self._rendered.clear()  # resizes and scrolling leave stale entries behind
        shown = metrics.elidedText(line, Qt.TextElideMode.ElideRight, rect.width())
        width, height = max(metrics.horizontalAdvance(shown), 1), metrics.height()
        if align & Qt.AlignmentFlag.AlignRight:
            x = rect.right() + 1 - width
        elif align & Qt.AlignmentFlag.AlignHCenter:
            x = rect.left() + (rect.width() - width) // 2
        else:
            x = rect.left()
        if align & Qt.AlignmentFlag.AlignBottom:
            y = rect.bottom() + 1 - height
        elif align & Qt.AlignmentFlag.AlignVCenter:
            y = rect.top() + (rect.height() - height) // 2
        else:
            y = rect.top()
        pad = 2  # glyphs may overhang their advance by a pixel or so
        image = QImage(
            round((width + 2 * pad) * ratio),
            round(height * ratio),
            QImage.Format.Format_ARGB32_Premultiplied,
        )
        image.setDevicePixelRatio(ratio)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setFont(font)
        painter.setPen(colour)
        painter.drawText(
            QRect(pad, 0, width, height),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            shown,
        )
        painter.end()
        found = (QPoint(x - pad, y), image)
        self._rendered[key] = found
        return found

    def paint(self, painter: QPainter, view: SliceView, readout: str) -> None:
        """Letters and corner texts in viewport pixels (unaffected by zoom and pan)."""
        font = view.text_font()
        ratio = view.devicePixelRatioF()
        font_key = f"{font.key()}@{ratio}"
        if font_key != self._font_key:
            self._rendered.clear()
            self._screens.clear()
            self._font_key = font_key
        texts = corner_texts(view)
        if readout:
            texts["bottom_right"] = [readout]
        viewport = view.viewport()
        key = (viewport.width(), viewport.height(), view.letters, *map(tuple, texts.values()))
        placed = self._screens.get(key)
        if placed is None:  # not shown like this lately: place (and render) what changed
            if len(self._screens) >= self.CACHE_LIMIT:
                self._screens.clear()
            metrics = QFontMetrics(font)
            placed = [
                self._line(font, metrics, ratio, colour, line, rect, align)
                for colour, line, rect, align in _placed_lines(view, texts, metrics)
                if line
            ]
            self._screens[key] = placed
        for point, image in placed:
            painter.drawImage(point, image)


def _placed_lines(
    view: SliceView, texts: dict[str, list[str]], metrics: QFontMetrics
) -> list[tuple[QColor, str, QRect, Qt.AlignmentFlag]]:
    """(colour, text, box, alignment) of every letter and corner line of a view."""
    A = Qt.AlignmentFlag
    width, height = view.viewport().width(), view.viewport().height()
    margin = 4
    line_h = metrics.height()
    letters = view.letters
    placed = [
        (LETTER_COLOR, letters.left, QRect(margin, 0, 60, height), A.AlignLeft | A.AlignVCenter),
        (
            LETTER_COLOR,
            letters.right,
            QRect(width - 60 - margin, 0, 60, height),
            A.AlignRight | A.AlignVCenter,
        ),
        (LETTER_COLOR, letters.top, QRect(0, margin, width, line_h), A.AlignHCenter | A.AlignTop),
        (
            LETTER_COLOR,
            letters.bottom,
            QRect(0, height - line_h - margin, width, line_h),
            A.AlignHCenter | A.AlignBottom,
        ),
    ]
    half = max(width // 2 - metrics.horizontalAdvance("MM"), 20)
    for corner, lines in texts.items():
        top = corner.startswith("top")
        left = corner.endswith("left")
        align = (A.AlignLeft if left else A.AlignRight) | A.AlignVCenter
        # a bottom readout may use the full width when the bottom-left lines are short
        room = width - 2 * margin if corner == "bottom_right" else half
        x = margin if left else width - margin - room
        for n, line in enumerate(lines):
            y = margin + n * line_h if top else height - margin - (len(lines) - n) * line_h
            if corner == "bottom_right" and y > height - margin - 3 * line_h:
                y = height - margin - 3 * line_h - (len(lines) - n - 1) * line_h
            placed.append((TEXT_COLOR, line, QRect(x, y, room, line_h), align))
    return placed
