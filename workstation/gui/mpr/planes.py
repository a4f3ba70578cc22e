"""The three patient planes and the letters a radiologist expects on each edge of a view.

Views follow the radiological convention (Horos, Weasis, Slicer): axial seen from the feet
(patient left on screen right, anterior up), coronal seen from the front (patient left on screen
right, superior up), sagittal seen from the patient's left (anterior on screen left, superior up).
Directions are DICOM patient coordinates: +x = Left, +y = Posterior, +z = Superior.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np


class Plane(StrEnum):
    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"


@dataclass(frozen=True)
class PlaneAxes:
    """Unit LPS vectors of screen right, screen down and the slice normal (scroll direction)."""

    right: np.ndarray
    down: np.ndarray
    normal: np.ndarray


_L, _P, _S = np.eye(3)

PLANE_AXES: dict[Plane, PlaneAxes] = {
    Plane.AXIAL: PlaneAxes(right=_L, down=_P, normal=_S),
    Plane.CORONAL: PlaneAxes(right=_L, down=-_S, normal=-_P),
    Plane.SAGITTAL: PlaneAxes(right=_P, down=-_S, normal=-_L),
}
"""Scrolling "up" moves superior (axial), anterior (coronal) and to the patient's right
(sagittal), as in the usual reading-room viewers."""

_POSITIVE = ("L", "P", "S")
_NEGATIVE = ("R", "A", "I")


def direction_letters(vector: np.ndarray | tuple[float, float, float], tol: float = 1e-3) -> str:
    """Letters of the patient directions an LPS vector points to, strongest first.

    A pure direction gives one letter ("L"); an oblique one gives up to three ("LA", "SPL"), each
    component that contributes more than `tol` of the length, as DICOM viewers label oblique edges.
    """
    v = np.asarray(vector, dtype=float)
    norm = float(np.linalg.norm(v))
    if norm == 0.0:
        raise ValueError("a direction needs a non-zero vector")
    v = v / norm
    order = np.argsort(-np.abs(v), kind="stable")
    letters = []
    for axis in order:
        component = v[axis]
        if abs(component) <= tol:
            continue
        letters.append(_POSITIVE[axis] if component > 0 else _NEGATIVE[axis])
    return "".join(letters)


@dataclass(frozen=True)
class EdgeLetters:
    left: str
    right: str
    top: str
    bottom: str


def edge_letters(right: np.ndarray, down: np.ndarray, tol: float = 1e-3) -> EdgeLetters:
    """The letters on the four edges of a view whose screen axes point along `right`/`down`."""
    return EdgeLetters(
        left=direction_letters(-np.asarray(right), tol),
        right=direction_letters(right, tol),
        top=direction_letters(-np.asarray(down), tol),
        bottom=direction_letters(down, tol),
    )
