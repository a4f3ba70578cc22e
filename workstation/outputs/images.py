"""Image results to files: NIfTI always, DICOM (SEG, parametric map, image series) when the
result's source is a DICOM series the writers can reference."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from workstation.core.refs import SeriesRef
from workstation.core.results import DerivedVolume, GeneratedSeries, HeatMap, LabelMap
from workstation.core.volume import Volume
from workstation.outputs.files import OutputFile
from workstation.outputs.heatmaps import ucum_units
from workstation.outputs.run_info import RunInfo


@dataclass
class ImageWriter:
    """Writes the image results of one run into `out_dir`; remembers notes for run.json and
    reads each source series' headers once."""

    out_dir: Path
    run_info: RunInfo
    notes: list[str] = field(default_factory=list)
    series_number: int = 900
    _sources: dict[tuple[str, Any], Any] = field(default_factory=dict)

    # --- per result kind --------------------------------------------------------------------
    def label_map(self, result: LabelMap, stem: str) -> list[OutputFile]:
        volume = result.volume
        outputs = [self._nifti(volume.with_array(_compact_labels(volume.array)), stem, result.name)]
        outputs.append(self._json(_label_table(result), f"{stem}.labels.json", result.name))
        from workstation.dicom.write.seg import segment_table, write_segmentation

        if not segment_table(result):
            self.notes.append(f"{result.name}: the label map is empty, so no DICOM SEG was written")
            return outputs
        source = self._source(volume, result.name, "a DICOM Segmentation")
        if source is not None:
            path = write_segmentation(
                result,
                source,
                self.provenance,
                self.out_dir / f"{stem}.seg.dcm",
                series_number=self._next_series_number(),
            )
            outputs.append(OutputFile.of(path, "dicom_seg", result.name))
        return outputs

    def heat_map(self, result: HeatMap, stem: str) -> list[OutputFile]:
        volume = result.volume
        outputs = [
            self._nifti(volume.with_array(volume.array.astype(np.float32)), stem, result.name)
        ]
        source = self._source(volume, result.name, "a DICOM Parametric Map")
        if source is not None:
            from workstation.dicom.write.pmap import write_parametric_map

            code, note = ucum_units(result.units)
            if note:
                self.notes.append(f"{result.name}: {note}")
            path = write_parametric_map(
                replace(result, units=code),
                source,
                self.provenance,
                self.out_dir / f"{stem}.pmap.dcm",
                series_number=self._next_series_number(),
            )
            outputs.append(OutputFile.of(path, "dicom_parametric_map", result.name))
        return outputs

    def derived_volume(self, result: DerivedVolume, stem: str) -> list[OutputFile]:
        from workstation.dicom.write.series import write_image_series

        volume = result.volume
        outputs = [self._nifti(volume, stem, result.name)]
        source = self._source(volume, result.name, "a derived DICOM series")
        if source is None:
            return outputs
        paths = write_image_series(
            volume,
            self.out_dir / stem,
            self.provenance,
            source=source,
            generated=False,
            modality=_modality(volume, source.ref),
            series_description=result.series_description or result.name,
            series_number=self._next_series_number(),
        )
        return outputs + [OutputFile.of(p, "dicom_series", result.name) for p in paths]

    def generated_series(self, result: GeneratedSeries, stem: str) -> list[OutputFile]:
        from workstation.dicom.write.series import write_image_series

        volume = result.volume
        paths = write_image_series(
            volume,
            self.out_dir / stem,
            self.provenance,
            source=None,
            generated=True,
            modality=result.modality or str(volume.metadata.get("modality", "OT")),
            series_description=result.series_description or "SYNTHETIC",
            series_number=self._next_series_number(),
        )
        outputs = [self._nifti(volume, stem, result.name)]
        return outputs + [OutputFile.of(p, "dicom_series", result.name) for p in paths]

    # --- shared -----------------------------------------------------------------------------
    @cached_property
    def provenance(self) -> Any:
        return self.run_info.provenance()

    def _next_series_number(self) -> int:
        self.series_number += 1
        return self.series_number

    def _source(self, volume: Volume, name: str, what: str) -> Any:
        """The DICOM source of `volume` placed on its grid, or None (with a note) when the input
        was not DICOM. A DICOM source that cannot be referenced raises `SourceProblem`."""
        from workstation.dicom.write.sources import read_source_series

        ref = volume.source or self.run_info.source_series
        if ref is None or not ref.paths:
            self.notes.append(
                f"{name}: the input was not a DICOM series, so {what} was not written (NIfTI only)"
            )
            return None
        key = (ref.stack_id, volume.geometry)
        if key not in self._sources:
            self._sources[key] = read_source_series(ref, volume.geometry)
        return self._sources[key]

    def _nifti(self, volume: Volume, stem: str, result: str) -> OutputFile:
        import nibabel as nib

        image = volume.to_nifti()
        description = f"{self.run_info.analysis_id} {self.run_info.analysis_version}"
        if self.run_info.demo_weights:
            description += " DEMO WEIGHTS"
        image.header["descrip"] = description.encode("ascii", "replace")[:79]
        path = self.out_dir / f"{stem}.nii.gz"
        nib.save(image, path)
        return OutputFile.of(path, "nifti", result)

    def _json(self, data: Any, filename: str, result: str) -> OutputFile:
        path = self.out_dir / filename
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        return OutputFile.of(path, "json", result)


def _label_table(result: LabelMap) -> dict[str, Any]:
    """The label table next to the NIfTI file, so its values keep their names and codes."""
    volumes = result.volumes_ml()
    return {
        "name": result.name,
        "description": result.description,
        "labels": [
            {
                "value": label.value,
                "name": label.name,
                "color": list(label.color),
                "code": list(label.code) if label.code else None,
                "volume_ml": round(volumes.get(label.value, 0.0), 6),
            }
            for label in result.labels
        ],
    }


def _compact_labels(array: np.ndarray) -> np.ndarray:
    """Labels in the smallest integer type that holds them (NIfTI readers dislike int64)."""
    lo, hi = (int(array.min()), int(array.max())) if array.size else (0, 0)
    for dtype in (np.uint8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return array.astype(dtype, copy=False)
    return array


def _modality(volume: Volume, ref: SeriesRef) -> str:
    return str(volume.metadata.get("modality") or ref.modality or "OT")
