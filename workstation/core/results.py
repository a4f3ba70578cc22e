"""What an analysis returns: plain data the host knows how to show in the viewer and write to files.

Plugins never return widgets. Every image result is a `Volume` on its source's grid (copy the
geometry with ``source_volume.with_array(...)``), so it overlays exactly and writers can reference
the source series. Each type has a `kind` string, used in declarations (`returns=`), run
manifests and by the writers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from workstation.core.refs import PatientRef
from workstation.core.volume import Volume


@dataclass(frozen=True)
class Label:
    """One entry of a label table. `code` is a coded concept (scheme, value, meaning), e.g.
    ``("SCT", "10200004", "Liver")``; it becomes the segment's property type in DICOM SEG."""

    value: int
    name: str
    color: tuple[int, int, int] = (255, 0, 0)
    code: tuple[str, str, str] | None = None


@dataclass
class Result:
    """Common to every result: a short name (used for file names) and a description."""

    kind: ClassVar[str] = "result"
    name: str = "result"
    description: str = ""

    def summary(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass
class LabelMap(Result):
    """Integer labels on the source grid (0 = background) with their names, colours and codes."""

    kind: ClassVar[str] = "label_map"
    volume: Volume | None = None
    labels: list[Label] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.volume is None:
            raise ValueError("LabelMap needs a volume")
        if not np.issubdtype(self.volume.array.dtype, np.integer):
            raise ValueError(f"LabelMap values must be integers, got {self.volume.array.dtype}")
        known = {label.value for label in self.labels}
        if 0 in known:
            raise ValueError("label value 0 is the background and has no entry")

    def volumes_ml(self) -> dict[int, float]:
        """Volume of each label in millilitres (voxel count times voxel volume)."""
        voxel_ml = float(np.prod(self.volume.spacing)) / 1000.0
        values, counts = np.unique(self.volume.array, return_counts=True)
        found = dict(zip(values.tolist(), counts.tolist()))
        return {label.value: found.get(label.value, 0) * voxel_ml for label in self.labels}

    def summary(self) -> str:
        parts = [
            f"{label.name} {ml:.2f} mL"
            for label, ml in zip(self.labels, self.volumes_ml().values())
        ]
        return f"label map {self.name}: " + (", ".join(parts) or "no labels")


@dataclass
class HeatMap(Result):
    """Continuous values on the source grid (probability, saliency, difference).
    `value_range` is what the colour map spans; `units` labels the legend."""

    kind: ClassVar[str] = "heat_map"
    volume: Volume | None = None
    value_range: tuple[float, float] | None = None
    units: str = ""
    colormap: str = "inferno"

    def __post_init__(self) -> None:
        if self.volume is None:
            raise ValueError("HeatMap needs a volume")
        if self.value_range is None:
            finite = self.volume.array[np.isfinite(self.volume.array)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            self.value_range = (lo, hi if hi > lo else lo + 1.0)


@dataclass
class Classification(Result):
    """Per-class probabilities for the whole input, with an optional explanation map."""

    kind: ClassVar[str] = "classification"
    labels: list[str] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)
    explanation: HeatMap | None = None

    def __post_init__(self) -> None:
        if len(self.labels) != len(self.probabilities):
            raise ValueError("Classification needs one probability per label")

    @property
    def predicted(self) -> str:
        return self.labels[int(np.argmax(self.probabilities))] if self.labels else ""

    def summary(self) -> str:
        pairs = ", ".join(f"{n} {p:.3f}" for n, p in zip(self.labels, self.probabilities))
        return f"classification {self.name}: {self.predicted} ({pairs})"


@dataclass
class DerivedVolume(Result):
    """A new image of the same anatomy on the source grid (denoised, reconstructed, filtered).
    The viewer opens it beside its source; writers make a new DICOM series that references it."""

    kind: ClassVar[str] = "derived_volume"
    volume: Volume | None = None
    series_description: str = ""

    def __post_init__(self) -> None:
        if self.volume is None:
            raise ValueError("DerivedVolume needs a volume")


@dataclass
class GeneratedSeries(Result):
    """A synthetic image made by a model, with no source patient. Always marked synthetic."""

    kind: ClassVar[str] = "generated_series"
    volume: Volume | None = None
    series_description: str = "SYNTHETIC"
    modality: str = "OT"
    synthetic: bool = True

    def __post_init__(self) -> None:
        if self.volume is None:
            raise ValueError("GeneratedSeries needs a volume")
        if not self.synthetic:
            raise ValueError("generated series are always synthetic")


@dataclass
class TimeSeries(Result):
    """Values over time for a patient (a risk curve), with optional per-variable attributions
    (``attributions[variable][t]``) drawn on the same time axis."""

    kind: ClassVar[str] = "time_series"
    patient: PatientRef | None = None
    times: list[str] = field(default_factory=list)  # ISO 8601
    values: list[float] = field(default_factory=list)
    units: str = ""
    attributions: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.times) != len(self.values):
            raise ValueError("TimeSeries needs one value per time")
        for variable, row in self.attributions.items():
            if len(row) != len(self.times):
                raise ValueError(f"attributions for {variable!r} need one value per time")


@dataclass
class Measurements(Result):
    """A table: `columns` name the fields, `units` maps a column to its unit, `rows` hold values."""

    kind: ClassVar[str] = "measurements"
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"row {row!r} does not have {len(self.columns)} columns")

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]


@dataclass
class Report(Result):
    """Free text in Markdown, shown in the results panel and written as a .md file."""

    kind: ClassVar[str] = "report"
    text: str = ""


RESULT_TYPES: dict[str, type[Result]] = {
    cls.kind: cls
    for cls in (
        LabelMap,
        HeatMap,
        Classification,
        DerivedVolume,
        GeneratedSeries,
        TimeSeries,
        Measurements,
        Report,
    )
}
