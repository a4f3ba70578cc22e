"""A heat map as a DICOM Parametric Map (float values on the source's frames), with highdicom.

Written when the heat map's source is a DICOM series: it references the source instances, keeps
the values as 32-bit floats with a real-world value mapping that names their units, and says
which analysis made it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from workstation.core.results import HeatMap
from workstation.dicom.write.provenance import MANUFACTURER, Provenance, new_uid
from workstation.dicom.write.sources import SourceSeries

NO_UNITS = ("UCUM", "1", "no units")


def write_parametric_map(
    heat_map: HeatMap,
    source: SourceSeries,
    provenance: Provenance,
    path: Path,
    *,
    series_number: int = 902,
) -> Path:
    """Write `heat_map` (on `source`'s grid) as a float Parametric Map at `path`."""
    import highdicom as hd

    values = np.nan_to_num(heat_map.volume.array.astype(np.float32))
    frames = source.frames_of(values)
    lo, hi = heat_map.value_range or (float(values.min()), float(values.max()))
    lo, hi = float(min(lo, values.min())), float(max(hi, values.max()))
    unit = _unit(heat_map.units)
    mapping = hd.pm.RealWorldValueMapping(
        lut_label=_short(heat_map.name or "heatmap", 16),
        lut_explanation=_short(heat_map.description or heat_map.name or "heat map", 64),
        unit=unit,
        value_range=(lo, hi if hi > lo else lo + 1.0),
        slope=1.0,
        intercept=0.0,
    )
    pmap = hd.pm.ParametricMap(
        source_images=source.datasets,
        pixel_array=frames,
        series_instance_uid=new_uid(),
        series_number=series_number,
        sop_instance_uid=new_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=provenance.model_name,
        software_versions=list(provenance.software_versions),  # pydicom 3 refuses a tuple
        device_serial_number=(provenance.workstation_version or "0")[:64],
        contains_recognizable_visual_features=False,
        real_world_value_mappings=[mapping],
        voi_lut_transformations=[
            # LINEAR_EXACT: probabilities span less than 1, which plain LINEAR windows refuse
            hd.VOILUTTransformation(
                window_center=(lo + hi) / 2.0,
                window_width=max(hi - lo, 1e-6),
                voi_lut_function="LINEAR_EXACT",
            )
        ],
        content_description=provenance.describe(heat_map.description or heat_map.name),
        content_creator_name=provenance.creator_name,
        content_label=_content_label(heat_map.name),
    )
    pmap.SeriesDescription = provenance.series_description(f"MAP {heat_map.name}")
    pmap.DerivationDescription = provenance.derivation()
    pmap.Laterality = source.first.get("Laterality", "")
    path.parent.mkdir(parents=True, exist_ok=True)
    pmap.save_as(path)
    return path


def _unit(units: str) -> Any:
    """The heat map's units as a UCUM code ('1' when it has none, e.g. a probability)."""
    import highdicom as hd

    if not units or units.strip() in ("1", "probability", "score"):
        scheme, value, meaning = NO_UNITS
    else:
        scheme, value, meaning = "UCUM", units.strip(), units.strip()
    return hd.sr.CodedConcept(value=value, scheme_designator=scheme, meaning=meaning)


def _short(text: str, limit: int) -> str:
    return text.replace("\\", "/")[:limit]


def _content_label(name: str) -> str:
    text = "".join(ch if ch.isalnum() else "_" for ch in (name or "").upper())
    return (text.strip("_") or "HEATMAP")[:16]
