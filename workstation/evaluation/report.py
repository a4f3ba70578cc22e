"""The per-case CSV and the summary JSON."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def write_cases_csv(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """One row per case; columns in first-seen order, blanks where a case has no value."""
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
    return path


def write_summary_json(summary: Mapping[str, Any], path: Path) -> Path:
    """NaN (a metric with nothing to score) is written as null, so the file is valid JSON."""
    path.write_text(json.dumps(_clean(summary), indent=2) + "\n", encoding="utf-8")
    return path


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else round(value, 6)
    return value


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return None if not math.isfinite(value) else value
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value
