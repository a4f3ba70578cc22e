"""`write_results`: every result of a run to files in its run folder, plus ``run.json``.

Dispatch is by result kind (see `WRITERS`). A result that cannot be written (its DICOM source
vanished, its grid does not match the source) does not stop the others: everything writable is
written, ``run.json`` lists the problems, and `OutputError` is raised naming them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workstation.core.results import (
    Classification,
    DerivedVolume,
    GeneratedSeries,
    HeatMap,
    LabelMap,
    Measurements,
    Report,
    Result,
    TimeSeries,
)
from workstation.outputs import tables
from workstation.outputs.files import Names, OutputFile
from workstation.outputs.heatmaps import colormap_name, ucum_units
from workstation.outputs.images import ImageWriter
from workstation.outputs.run_info import RunInfo

MANIFEST_NAME = "run.json"
log = logging.getLogger(__name__)

Writer = Callable[[Result, str, Path, RunInfo, ImageWriter], list[OutputFile]]


class OutputError(RuntimeError):
    """Some results could not be written; the message names each one and why. The files that
    could be written, and run.json, are in the run folder."""


def _classification(
    result: Classification, stem: str, out: Path, info: RunInfo, images: ImageWriter
) -> list[OutputFile]:
    files = tables.classification(result, stem, out, info)
    if result.explanation is not None:
        files += images.heat_map(result.explanation, f"{stem}.explanation")
    return files


WRITERS: dict[str, Writer] = {
    LabelMap.kind: lambda r, s, o, i, img: img.label_map(r, s),
    HeatMap.kind: lambda r, s, o, i, img: img.heat_map(r, s),
    DerivedVolume.kind: lambda r, s, o, i, img: img.derived_volume(r, s),
    GeneratedSeries.kind: lambda r, s, o, i, img: img.generated_series(r, s),
    Classification.kind: _classification,
    Measurements.kind: lambda r, s, o, i, img: tables.measurements(r, s, o, i),
    TimeSeries.kind: lambda r, s, o, i, img: tables.time_series(r, s, o, i),
    Report.kind: lambda r, s, o, i, img: tables.report(r, s, o, i),
}
"""Result kind -> writer. Every kind in `workstation.core.results.RESULT_TYPES` has one."""


def write_results(
    results: Result | Iterable[Result],
    out_dir: str | Path,
    run_info: RunInfo | Mapping[str, Any],
) -> list[OutputFile]:
    """Write `results` into `out_dir` (created if needed) and a ``run.json`` manifest.

    Returns every file written, ``run.json`` last. Raises `OutputError` (after writing what it
    could, and the manifest) when a result could not be written, and `TypeError` for an object
    that is not a result.
    """
    info = RunInfo.coerce(run_info)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    items = [results] if isinstance(results, Result) else list(results)
    for item in items:
        if not isinstance(item, Result):
            raise TypeError(f"{info.analysis_id} returned {type(item).__name__}, not a result type")

    names = Names()
    images = ImageWriter(out, info)
    outputs: list[OutputFile] = []
    errors: list[str] = []
    for result in items:
        writer = WRITERS.get(result.kind)
        if writer is None:
            errors.append(f"{result.name}: no writer for result kind {result.kind!r}")
            continue
        stem = names.stem(result.name, result.kind)
        try:
            outputs += writer(result, stem, out, info, images)
        except Exception as error:
            errors.append(f"{result.kind} {result.name!r}: {type(error).__name__}: {error}")
            log.warning("could not write %s %r: %s", result.kind, result.name, error)

    manifest = write_manifest(out, info, outputs, notes=images.notes, errors=errors, results=items)
    outputs.append(manifest)
    if errors:
        raise OutputError(
            f"{len(errors)} of {len(items)} results could not be written to {out}: "
            + "; ".join(errors)
        )
    return outputs


def write_manifest(
    out_dir: Path,
    info: RunInfo,
    outputs: list[OutputFile],
    *,
    notes: list[str] = (),
    errors: list[str] = (),
    results: list[Result] = (),
) -> OutputFile:
    """``run.json``: the run (analysis, inputs, parameters, device, versions, timing), one line
    per result, and every output file with its sha256."""
    notes = list(notes)
    manifest = {
        **info.to_manifest(),
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "results": [_result_entry(r, notes) for r in results],
        "outputs": [o.to_dict(relative_to=out_dir) for o in outputs],
        "notes": notes,
        "errors": list(errors),
    }
    path = out_dir / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    return OutputFile.of(path, "manifest")


def _result_entry(result: Result, notes: list[str]) -> dict[str, Any]:
    """One result in run.json; a heat map also says how to show it (colour map, value range,
    units as given and as the UCUM code its Parametric Map states), so a reopened run folder
    looks as the run did."""
    entry: dict[str, Any] = {"kind": result.kind, "name": result.name, "summary": result.summary()}
    if isinstance(result, HeatMap):
        colormap, note = colormap_name(result.colormap)
        if note:
            notes.append(f"{result.name}: {note}")
        entry.update(
            colormap=colormap,
            value_range=[float(v) for v in result.value_range or ()],
            units=result.units,
            units_ucum=ucum_units(result.units)[0],
        )
    return entry
