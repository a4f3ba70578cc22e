"""Window/level: the presets radiologists use, automatic windows for MR, and the grey mapping.

A window (centre C, width W) maps modality values linearly onto the grey ramp: C - W/2 is black,
C + W/2 is white, values outside are clipped. The view hands the same bounds to pyqtgraph, so what
`grey_levels` computes is what the screen shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    center: float
    width: float

    def __post_init__(self) -> None:
        if self.width <= 0:
            raise ValueError(f"window width must be positive, got {self.width}")

    @property
    def low(self) -> float:
        return self.center - self.width / 2.0

    @property
    def high(self) -> float:
        return self.center + self.width / 2.0

    def moved(self, d_center: float, d_width: float) -> Window:
        """The window after a drag: horizontal changes width, vertical changes level."""
        return Window(self.center + d_center, max(1.0, self.width + d_width))

    def label(self) -> str:
        return f"W {self.width:g} L {self.center:g}"


CT_PRESETS: dict[str, Window] = {
    "Brain": Window(40, 80),
    "Subdural": Window(75, 215),
    "Stroke": Window(35, 40),
    "Lung": Window(-600, 1500),
    "Mediastinum": Window(50, 350),
    "Abdomen": Window(60, 400),
    "Liver": Window(60, 160),
    "Bone": Window(400, 1800),
}
"""Centre/width in HU, as in common reading-room presets (Radiopaedia's table)."""

PRESET_SHORTCUTS: dict[str, str] = {name: str(n) for n, name in enumerate(CT_PRESETS, start=1)}


def grey_levels(values: np.ndarray, window: Window, invert: bool = False) -> np.ndarray:
    """0..255 grey of modality values under `window` (the reference for what is on screen)."""
    scaled = (np.asarray(values, dtype=np.float64) - window.low) / window.width * 255.0
    grey = np.clip(scaled, 0.0, 255.0)
    return 255.0 - grey if invert else grey


def auto_window(array: np.ndarray, low_pct: float = 1.0, high_pct: float = 99.0) -> Window:
    """A window spanning the 1st..99th percentile of the non-background voxels (for MR, PET, and
    anything without a stored window). Sampled, so it is quick on large volumes."""
    flat = np.asarray(array).ravel()
    if flat.size > 1_000_000:
        flat = flat[:: flat.size // 1_000_000 + 1]
    flat = flat[np.isfinite(flat)] if np.issubdtype(flat.dtype, np.floating) else flat
    if flat.size == 0:
        return Window(0.5, 1.0)
    body = flat[flat > flat.min()] if (flat > flat.min()).mean() > 0.05 else flat
    lo, hi = np.percentile(body, [low_pct, high_pct])
    if hi <= lo:
        lo, hi = float(flat.min()), float(flat.max())
    if hi <= lo:  # a constant image: show it mid-grey rather than black
        return Window(float(lo), 1.0)
    return Window((lo + hi) / 2.0, float(hi - lo))


def default_window(array: np.ndarray, metadata: dict) -> Window:
    """The DICOM window stored with the series when there is one, else a CT soft-tissue window
    for CT, else automatic."""
    center = _first(metadata.get("window_center"))
    width = _first(metadata.get("window_width"))
    if center is not None and width is not None and width > 0:
        return Window(center, width)
    modality = str(metadata.get("modality") or "").upper()
    looks_like_hu = not modality and np.issubdtype(array.dtype, np.integer) and array.min() <= -900
    if modality == "CT" or looks_like_hu:  # NIfTI carries no modality; air at -1000 says CT
        return CT_PRESETS["Abdomen"]
    return auto_window(array)


def _first(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        if len(value) == 0:
            return None
        value = value[0]
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


COLOR_MAPS = ("grey", "inferno", "viridis", "plasma", "magma", "hot", "coolwarm")
"""Names a user picks from; "coolwarm" is diverging (blue, white, red) for signed maps such as
a restored-minus-source difference."""
_PYQTGRAPH_NAMES = {"hot": "CET-L3", "coolwarm": "CET-D1"}


def lookup_table(name: str, invert: bool = False) -> np.ndarray:
    """A 256 x 3 uint8 table for a colour map name in `COLOR_MAPS` (grey is a plain ramp)."""
    if name == "grey":
        ramp = np.arange(256, dtype=np.uint8)
        table = np.stack([ramp, ramp, ramp], axis=1)
    else:
        import pyqtgraph as pg

        source = _PYQTGRAPH_NAMES.get(name, name)
        table = pg.colormap.get(source).getLookupTable(nPts=256, alpha=False).astype(np.uint8)
    return np.ascontiguousarray(table[::-1] if invert else table)
