"""Small pieces every scorer shares: column names, summary statistics, finding a result."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from workstation.core.volume import Volume
from workstation.evaluation.dataset import Case, DatasetProblem


class EvaluationRefused(ValueError):
    """The evaluation cannot start, or cannot go on, for a reason that is the same for every case
    (a device, parameter or option refused, weights that are missing or not trusted). Nothing is
    written; the message is shown once."""


class Scorer(Protocol):
    """What `evaluate` asks of a task's scorer.

    `score` fills the case's row and returns notes about that case (an empty prediction, a
    resampled reference); `finish` runs once after the last case, may add columns to the rows and
    returns notes about the whole data set (reference labels that were not scored)."""

    def check_reference(self, case: Case) -> None: ...

    def score(
        self, case: Case, image: Volume, results: Sequence[Any], row: dict[str, Any], registry: Any
    ) -> list[str]: ...

    def finish(self, rows: list[dict[str, Any]]) -> list[str]: ...

    def extras(self) -> dict[str, Any]: ...

    def summary(self) -> dict[str, Any]: ...

    def plots(self, out: Path, title: str) -> list[Path]: ...


def column(name: str) -> str:
    """A label or class name as a CSV column suffix: letters, digits and underscores."""
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_") or "label"


def stats(values: Sequence[float]) -> dict[str, float]:
    """Mean, median and standard deviation of the finite values; `cases` says how many."""
    finite = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if finite.size == 0:
        return {"mean": float("nan"), "median": float("nan"), "std": float("nan"), "cases": 0}
    return {
        "mean": float(finite.mean()),
        "median": float(np.median(finite)),
        "std": float(finite.std()),
        "cases": int(finite.size),
    }


def first_result(results: Sequence[Any], kind: type, case: Case) -> Any:
    for result in results:
        if isinstance(result, kind):
            return result
    raise DatasetProblem(f"{case.describe()}: the analysis returned no {kind.__name__}")


def add_note(row: dict[str, Any], note: str) -> None:
    """A note in the case's `notes` cell (several are joined with "; ")."""
    row["notes"] = f"{row['notes']}; {note}" if row.get("notes") else note
