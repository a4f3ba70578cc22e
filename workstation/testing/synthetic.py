"""A small synthetic CT series on disk, indexed into a store, with its ground truth.

Built from `workstation.testing.phantoms` (a trunk with lungs, spine, liver, kidneys and liver
lesions), small enough for unit tests: 16 slices of 64 x 64 at 2 x 2 x 4 mm.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from workstation.core.refs import SeriesRef
    from workstation.core.volume import Volume

DEFAULT_SHAPE = (16, 64, 64)  # (z, y, x)
DEFAULT_SPACING = (2.0, 2.0, 4.0)  # (x, y, z) mm


@dataclass
class SyntheticSeries:
    """A synthetic CT series: its files, the store it is indexed in, and the truth.

    `labels` is the ground-truth label map ([z, y, x], values in `label_names`, e.g. 6 = lesion)
    on the same grid as `hu`, the exact HU values the series holds.
    """

    folder: Path
    paths: list[Path]
    store_dir: Path
    series_id: str
    hu: np.ndarray
    labels: np.ndarray
    spacing: tuple[float, float, float]
    label_names: dict[int, str] = field(default_factory=dict)

    def label_id(self, name: str) -> int:
        """The truth label value of a structure ('lesion' -> 6)."""
        for value, label in self.label_names.items():
            if label == name:
                return value
        raise KeyError(f"no structure {name!r}; known: {', '.join(self.label_names.values())}")

    def open(self) -> Volume:
        """The series as a `Volume` loaded through the store's catalog (with its `SeriesRef`)."""
        from workstation.dicom.catalog import Catalog

        with Catalog(self.store_dir) as catalog:
            return catalog.open_series(self.series_id)

    def series_ref(self) -> SeriesRef:
        from workstation.dicom.catalog import Catalog

        with Catalog(self.store_dir) as catalog:
            return catalog.series_ref(self.series_id)


def make_synthetic_ct_series(
    folder: str | os.PathLike[str],
    store_dir: str | os.PathLike[str],
    *,
    shape: tuple[int, int, int] = DEFAULT_SHAPE,
    spacing: tuple[float, float, float] = DEFAULT_SPACING,
    seed: int = 0,
    lesions: int = 3,
) -> SyntheticSeries:
    """Write the phantom series into `folder` and index it into the store at `store_dir`."""
    from workstation.dicom.index import index_paths
    from workstation.testing.phantoms import LABELS, ct_phantom, write_ct_phantom_series

    folder, store_dir = Path(folder), Path(store_dir)
    existing = sorted(folder.glob("*.dcm")) if folder.is_dir() else []
    if existing:
        raise FileExistsError(
            f"{folder} already holds a DICOM series ({len(existing)} .dcm files, e.g. "
            f"{existing[0].name}); writing another there would overwrite its files. Give each "
            "synthetic series its own folder, e.g. tmp_path / 'ct-2'"
        )
    paths = write_ct_phantom_series(
        folder,
        shape=shape,
        spacing=spacing,
        seed=seed,
        lesions=lesions,
        patient_id="SYNTH-TEST-1",
        patient_name="SYNTHETIC^TEST",
    )
    summary = index_paths(store_dir, [folder])
    if summary.problems:
        raise RuntimeError(f"indexing the synthetic series in {folder} reported problems")
    (series_uid,) = summary.series_touched
    hu, labels = ct_phantom(shape, spacing, seed=seed, lesions=lesions)
    return SyntheticSeries(
        folder=folder,
        paths=list(paths),
        store_dir=store_dir,
        series_id=series_uid,
        hu=hu,
        labels=labels,
        spacing=tuple(float(v) for v in spacing),  # type: ignore[arg-type]
        label_names=dict(LABELS),
    )
