"""Multi-planar reformatting: patient planes, orientation letters and slice extraction (no Qt)."""

from workstation.gui.mpr.planes import (
    PLANE_AXES,
    EdgeLetters,
    Plane,
    direction_letters,
    edge_letters,
)
from workstation.gui.mpr.slicing import SliceGrid, slice_grid

__all__ = [
    "PLANE_AXES",
    "EdgeLetters",
    "Plane",
    "SliceGrid",
    "direction_letters",
    "edge_letters",
    "slice_grid",
]
