"""Non-image results to files: classifications, measurements and time series as JSON (full
detail, units, provenance) and CSV (one table for spreadsheets); time series also as a PNG plot;
reports as Markdown."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from workstation.core.results import Classification, Measurements, Report, Result, TimeSeries
from workstation.outputs.files import OutputFile
from workstation.outputs.plots import time_series_png
from workstation.outputs.run_info import RunInfo

DEMO_COLUMN = "demo_weights"


def classification(
    result: Classification, stem: str, out_dir: Path, info: RunInfo
) -> list[OutputFile]:
    data = {
        **_header(result, info),
        "predicted": result.predicted,
        "classes": [
            {"label": label, "probability": _number(p)}
            for label, p in zip(result.labels, result.probabilities)
        ],
    }
    rows = [[label, _number(p)] for label, p in zip(result.labels, result.probabilities)]
    return [
        _write_json(data, out_dir / f"{stem}.json", result.name),
        _write_csv(["label", "probability"], rows, out_dir / f"{stem}.csv", result.name, info),
    ]


def column_heading(column: str, unit: str | None) -> str:
    """ "volume (mL)", but "volume_ml" and "voxels" as they are: a name that already says its
    unit does not say it twice."""
    if not unit:
        return column
    name, said = column.lower(), unit.lower()
    if name == said or name.endswith(("_" + said, " " + said)):
        return column
    return f"{column} ({unit})"


def measurements(result: Measurements, stem: str, out_dir: Path, info: RunInfo) -> list[OutputFile]:
    data = {
        **_header(result, info),
        "columns": list(result.columns),
        "units": dict(result.units),
        "rows": [{k: _number(v) for k, v in row.items()} for row in result.as_dicts()],
    }
    header = [column_heading(c, result.units.get(c)) for c in result.columns]
    rows = [[_number(v) for v in row] for row in result.rows]
    return [
        _write_json(data, out_dir / f"{stem}.json", result.name),
        _write_csv(header, rows, out_dir / f"{stem}.csv", result.name, info),
    ]


def time_series(result: TimeSeries, stem: str, out_dir: Path, info: RunInfo) -> list[OutputFile]:
    variables = list(result.attributions)
    data = {
        **_header(result, info),
        # the patient's id only: names and other details stay in the records store
        "patient_id": result.patient.patient_id if result.patient else None,
        "units": result.units,
        "times": list(result.times),
        "values": [_number(v) for v in result.values],
        "attributions": {k: [_number(v) for v in row] for k, row in result.attributions.items()},
    }
    value_column = f"value ({result.units})" if result.units else "value"
    header = ["time", value_column, *(f"attribution {v}" for v in variables)]
    rows = [
        [t, _number(v), *(_number(result.attributions[name][i]) for name in variables)]
        for i, (t, v) in enumerate(zip(result.times, result.values))
    ]
    plot = out_dir / f"{stem}.png"
    time_series_png(result, plot, info.demo_weights)
    return [
        _write_json(data, out_dir / f"{stem}.json", result.name),
        _write_csv(header, rows, out_dir / f"{stem}.csv", result.name, info),
        OutputFile.of(plot, "png", result.name),
    ]


def report(result: Report, stem: str, out_dir: Path, info: RunInfo) -> list[OutputFile]:
    """The report's Markdown, with a banner when demo weights made it and a provenance footer."""
    parts = []
    if info.demo_weights:
        parts.append(
            "> **Demo weights.** This report was made with the demo weights shipped with the "
            "plugin, not a validated model. Not for clinical use.\n"
        )
    text = result.text.rstrip() or f"# {result.name}\n\n(empty report)"
    parts.append(text + "\n")
    parts.append(
        "\n---\n"
        f"Made by {info.analysis_title or info.analysis_id} ({info.analysis_id} "
        f"{info.analysis_version or 'unknown version'}) on {info.device or 'cpu'}"
        f"{', run ' + info.run_id if info.run_id else ''}.\n"
    )
    path = out_dir / f"{stem}.md"
    path.write_text("".join(parts), encoding="utf-8")
    return [OutputFile.of(path, "markdown", result.name)]


def _header(result: Result, info: RunInfo) -> dict[str, Any]:
    return {
        "kind": result.kind,
        "name": result.name,
        "description": result.description,
        "analysis": {"id": info.analysis_id, "version": info.analysis_version},
        "demo_weights": info.demo_weights,
    }


def _write_json(data: Any, path: Path, result: str) -> OutputFile:
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return OutputFile.of(path, "json", result)


def _write_csv(
    header: list[str], rows: list[list[Any]], path: Path, result: str, info: RunInfo
) -> OutputFile:
    """A plain CSV; results from demo weights get a `demo_weights` column saying so on every
    row, so the mark survives copying rows into a spreadsheet."""
    if info.demo_weights:
        header = [*header, DEMO_COLUMN]
        rows = [[*row, "yes"] for row in rows]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(["" if v is None else v for v in row] for row in rows)
    return OutputFile.of(path, "csv", result)


def _number(value: Any) -> Any:
    """Plain Python numbers for JSON; NaN and infinities become None (JSON has none)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
