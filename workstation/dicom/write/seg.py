"""A label map as a DICOM Segmentation (binary, one segment per label), made with highdicom.

The SEG references its source series and every source instance (frames in the source's order),
carries each label as a segment with coded terms and colour, names the analysis as the
segmentation algorithm, and gets new UIDs. It overlays exactly on the source because its frames
are the source frames' pixel grids.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from workstation.core.results import Label, LabelMap
from workstation.dicom.write.provenance import MANUFACTURER, Provenance, new_uid
from workstation.dicom.write.sources import SourceSeries

# Coded concepts as (scheme, value, meaning), the order `Label.code` uses.
DEFAULT_CATEGORY = ("SCT", "85756007", "Tissue")
DEFAULT_TYPE = ("SCT", "85756007", "Tissue")
CODED_CATEGORY = ("SCT", "91723000", "Anatomical Structure")
AI_FAMILY = ("DCM", "123110", "Artificial Intelligence")
PROCESSING_FAMILY = ("DCM", "110001", "Image Processing")


def segment_table(label_map: LabelMap) -> list[Label]:
    """The labels to write, in value order, with an entry made up for any value present in the
    array that the table does not name (so no labelled voxel is dropped)."""
    named = {label.value: label for label in label_map.labels}
    present = {int(v) for v in np.unique(label_map.volume.array) if v != 0}
    for value in sorted(present - set(named)):
        named[value] = Label(value, f"Label {value}")
    return [named[v] for v in sorted(named)]


def write_segmentation(
    label_map: LabelMap,
    source: SourceSeries,
    provenance: Provenance,
    path: Path,
    *,
    series_number: int = 900,
) -> Path:
    """Write `label_map` (on `source`'s grid) as a binary SEG at `path`."""
    import highdicom as hd

    labels = segment_table(label_map)
    if not labels:
        raise ValueError(f"label map {label_map.name!r} has no labels to write")
    numbers = np.zeros(max(label.value for label in labels) + 1, dtype=np.uint16)
    for number, label in enumerate(labels, start=1):
        numbers[label.value] = number
    values = label_map.volume.array
    if values.min() < 0:
        raise ValueError(f"label map {label_map.name!r} has negative label values")
    segments = numbers[np.clip(values, 0, len(numbers) - 1)]
    segments[values >= len(numbers)] = 0
    frames = source.frames_of(segments)

    algorithm = hd.AlgorithmIdentificationSequence(
        name=provenance.algorithm_name[:64],
        family=_code(AI_FAMILY if provenance.uses_model else PROCESSING_FAMILY),
        version=provenance.analysis_version[:64],
        source=(provenance.distribution or provenance.plugin or MANUFACTURER)[:64],
        parameters={k: str(v)[:64] for k, v in provenance.parameters.items()} or None,
    )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=label.name[:64] or f"Label {label.value}",
            segmented_property_category=_code(CODED_CATEGORY if label.code else DEFAULT_CATEGORY),
            segmented_property_type=_code(label.code or DEFAULT_TYPE),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
            display_color=hd.color.CIELabColor.from_rgb(*[int(c) for c in label.color]),
        )
        for number, label in enumerate(labels, start=1)
    ]
    seg = hd.seg.Segmentation(
        source_images=source.datasets,
        pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=new_uid(),
        series_number=series_number,
        sop_instance_uid=new_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=provenance.model_name,
        software_versions=list(provenance.software_versions),  # pydicom 3 refuses a tuple
        device_serial_number=(provenance.workstation_version or "0")[:64],
        content_description=provenance.describe(label_map.description or label_map.name),
        content_creator_name=provenance.creator_name,
        content_label=_content_label(label_map.name),
        omit_empty_frames=False,
    )
    seg.SeriesDescription = provenance.series_description(f"SEG {label_map.name}")
    seg.DerivationDescription = provenance.derivation()
    path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(path)
    return path


def _code(code: tuple[str, str, str]) -> Any:
    import highdicom as hd

    scheme, value, meaning = code
    return hd.sr.CodedConcept(value=str(value), scheme_designator=str(scheme), meaning=str(meaning))


def _content_label(name: str) -> str:
    """ContentLabel is a CS: upper case letters, digits, space and underscore, 16 characters."""
    text = "".join(ch if ch.isalnum() else "_" for ch in name.upper())
    return (text.strip("_") or "SEGMENTATION")[:16]
