"""Result overlays drawn over a slice: label maps (legend, per-label visibility, opacity, fill or
outline) and heat maps (colour map, opacity, threshold).

Each overlay holds its values on the displayed volume's grid: a result made on another grid is
resampled once when it is added (nearest neighbour for labels, linear for heat maps), so every
slice of the overlay comes from the same `SliceGrid` as the image under it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from workstation.core.results import HeatMap, Label, LabelMap
from workstation.core.volume import Geometry, Volume
from workstation.gui.mpr.slicing import SliceGrid
from workstation.gui.window_level import lookup_table


def on_grid(volume: Volume, grid: Geometry, order: int) -> tuple[Volume, bool]:
    """`volume` on `grid` (unchanged when it already is); True when it had to be resampled."""
    if volume.geometry.is_close(grid, tol_mm=1e-3):
        return volume, False
    return volume.resample_to(grid, order=order), True


@dataclass
class LegendEntry:
    value: int
    name: str
    color: tuple[int, int, int]
    volume_ml: float
    visible: bool = True


@dataclass
class LabelOverlay:
    """A label map on the displayed grid, drawn as coloured fill or outlines."""

    name: str
    volume: Volume
    legend: list[LegendEntry]
    opacity: float = 0.5
    outline: bool = False
    visible: bool = True
    resampled: bool = False
    kind: str = field(default="label_map", init=False)
    _top: int | None = field(default=None, init=False, repr=False)
    _table: tuple[tuple, np.ndarray] | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_result(cls, result: LabelMap, grid: Geometry, opacity: float = 0.5) -> LabelOverlay:
        volume, resampled = on_grid(result.volume, grid, order=0)  # type: ignore[arg-type]
        volumes = result.volumes_ml()  # measured on the result's own grid
        labels = result.labels or _labels_from_values(volume.array)
        legend = [
            LegendEntry(lab.value, lab.name, tuple(lab.color), volumes.get(lab.value, 0.0))
            for lab in labels
        ]
        return cls(result.name, volume, legend, opacity=opacity, resampled=resampled)

    def set_label_visible(self, value: int, visible: bool) -> None:
        for entry in self.legend:
            if entry.value == value:
                entry.visible = visible
                return
        raise KeyError(f"overlay {self.name!r} has no label {value}")

    @property
    def top_value(self) -> int:
        """The largest label value present or named (computed once: the volume never changes)."""
        if self._top is None:
            present = int(self.volume.array.max(initial=0))
            self._top = max([present] + [e.value for e in self.legend])
        return self._top

    def color_table(self) -> np.ndarray:
        """RGBA per label value (index = value); hidden and unknown labels are transparent.
        Rebuilt only when the opacity or the legend (colours, visibility) changed."""
        key = (self.opacity, tuple((e.value, tuple(e.color), e.visible) for e in self.legend))
        if self._table is not None and self._table[0] == key:
            return self._table[1]
        top = self.top_value
        table = np.zeros((max(top + 1, 256), 4), dtype=np.uint8)
        alpha = round(255 * min(max(self.opacity, 0.0), 1.0))
        for entry in self.legend:
            if entry.visible and 0 < entry.value <= top:
                table[entry.value] = (*entry.color, alpha)
        table.setflags(write=False)  # shared between paints: nobody may change it in place
        self._table = (key, table)
        return table

    def layer(self, grid: SliceGrid, slice_index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(data, lookup table) for the slice. Up to 255 labels the data are the label values and
        the table colours them (Qt draws an indexed image, no per-pixel work here); beyond
        that, RGBA pixels and no table."""
        labels = grid.extract(self.volume.array, slice_index, order=0, fill=0)
        if self.outline:
            labels = np.where(_boundary(labels), labels, 0)
        table = self.color_table()
        unsigned = labels.dtype.kind in "ub"
        if self.top_value <= 255 and (unsigned or labels.min(initial=0) >= 0):
            return np.ascontiguousarray(labels, dtype=np.uint8), table[:256]
        labels = np.clip(labels, 0, len(table) - 1).astype(np.intp, copy=False)
        return table[labels], None

    def rgba(self, grid: SliceGrid, slice_index: int) -> np.ndarray:
        data, table = self.layer(grid, slice_index)
        return data if table is None else table[data]

    def value_at(self, ijk: tuple[int, int, int]) -> str:
        """Readout text for the voxel (i, j, k) of the displayed grid."""
        i, j, k = ijk
        value = int(self.volume.array[k, j, i])
        if value == 0:
            return ""
        names = {e.value: e.name for e in self.legend}
        return f"{self.name}: {names.get(value, value)}"


def _labels_from_values(array: np.ndarray) -> list[Label]:
    palette = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48)]
    from workstation.plugins.worker import unnamed_label_name  # named as the host names them

    values = [int(v) for v in np.unique(array) if v > 0]
    return [
        Label(v, unnamed_label_name(v), palette[n % len(palette)]) for n, v in enumerate(values)
    ]


def _boundary(labels: np.ndarray) -> np.ndarray:
    """Pixels whose 4-neighbourhood holds another value: the outline of each region."""
    edge = np.zeros(labels.shape, dtype=bool)
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edge[0, :] = edge[-1, :] = True
    edge[:, 0] = edge[:, -1] = True
    return edge & (labels > 0)


@dataclass
class HeatOverlay:
    """Continuous values drawn through a colour map; values below `threshold` are not drawn."""

    name: str
    volume: Volume
    value_range: tuple[float, float]
    colormap: str = "inferno"
    opacity: float = 0.5
    threshold: float | None = None
    units: str = ""
    visible: bool = True
    resampled: bool = False
    kind: str = field(default="heat_map", init=False)

    @classmethod
    def from_result(cls, result: HeatMap, grid: Geometry, opacity: float = 0.5) -> HeatOverlay:
        volume, resampled = on_grid(result.volume, grid, order=1)  # type: ignore[arg-type]
        return cls(
            result.name,
            volume,
            tuple(result.value_range),  # type: ignore[arg-type]
            colormap=result.colormap if result.colormap else "inferno",
            opacity=opacity,
            units=result.units,
            resampled=resampled,
        )

    def layer(self, grid: SliceGrid, slice_index: int) -> tuple[np.ndarray, np.ndarray]:
        """(index, table): values scaled to 1..255 through the colour map; 0 is transparent
        (below the threshold, or outside the data)."""
        values = np.asarray(
            grid.extract(self.volume.array, slice_index, order=1, fill=np.nan), dtype=np.float32
        )
        lo, hi = self.value_range
        scaled = (values - lo) * (254.0 / (hi - lo if hi > lo else 1.0))
        index = (np.clip(np.nan_to_num(scaled, nan=0.0), 0.0, 254.0) + 1.0).astype(np.uint8)
        hidden = ~np.isfinite(values)
        if self.threshold is not None:
            hidden |= values < self.threshold
        index[hidden] = 0
        colours = lookup_table(self.colormap)[np.linspace(0, 255, 255).astype(int)]
        table = np.zeros((256, 4), dtype=np.uint8)
        table[1:, :3] = colours
        table[1:, 3] = round(255 * min(max(self.opacity, 0.0), 1.0))
        return index, table

    def rgba(self, grid: SliceGrid, slice_index: int) -> np.ndarray:
        index, table = self.layer(grid, slice_index)
        return table[index]

    def value_at(self, ijk: tuple[int, int, int]) -> str:
        i, j, k = ijk
        value = float(self.volume.array[k, j, i])
        return f"{self.name}: {value:.3g}{(' ' + self.units) if self.units else ''}"


Overlay = LabelOverlay | HeatOverlay
