"""Segmentation scoring: Dice and HD95 per label of the analysis, against label-map files.

Only the label values the analysis produces are scored. A reference that numbers its labels
differently (the workstation's demo phantoms number body, organs and lesions 1..6) would
otherwise be scored against the wrong structure or against nothing; its values can be mapped
onto the analysis's with `--label-map REF=ANALYSIS`, and every value left out is named in a note.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workstation.core.results import LabelMap
from workstation.core.volume import Volume
from workstation.evaluation.common import (
    EvaluationRefused,
    add_note,
    column,
    first_result,
    stats,
)
from workstation.evaluation.dataset import (
    Case,
    DatasetProblem,
    label_on_image_grid,
    read_volume,
)
from workstation.evaluation.quiet import library_warnings

FOREGROUND = "foreground"


def parse_label_map(items: str | Sequence[str]) -> dict[int, int]:
    """`"4=1,6=2"` (or several such strings) as {reference value: analysis value}.

    Raises EvaluationRefused naming the bad item."""
    texts = [items] if isinstance(items, str) else list(items)
    mapping: dict[int, int] = {}
    for text in texts:
        for item in text.split(","):
            item = item.strip()
            if not item:
                continue
            reference, sep, analysis = item.partition("=")
            try:
                if not sep:
                    raise ValueError(item)
                ref_value, analysis_value = int(reference), int(analysis)
            except ValueError:
                raise EvaluationRefused(
                    f"--label-map {text!r}: {item!r} is not REF=ANALYSIS with two label values "
                    "(e.g. --label-map 4=1,6=2)"
                ) from None
            if ref_value < 0 or analysis_value < 0:
                raise EvaluationRefused(f"--label-map {text!r}: {item!r}: label values are >= 0")
            if mapping.get(ref_value, analysis_value) != analysis_value:
                raise EvaluationRefused(
                    f"--label-map: reference value {ref_value} is mapped twice "
                    f"({mapping[ref_value]} and {analysis_value})"
                )
            mapping[ref_value] = analysis_value
    if not mapping:
        raise EvaluationRefused("--label-map: give at least one REF=ANALYSIS pair (e.g. 4=1)")
    return mapping


def label_map_text(mapping: Mapping[int, int]) -> str:
    return ",".join(f"{ref}={analysis}" for ref, analysis in mapping.items())


def apply_label_map(reference: np.ndarray, mapping: Mapping[int, int]) -> tuple[np.ndarray, set]:
    """The reference with its values renumbered; values the map does not name become 0
    (background) and are returned, so they can be named in a note."""
    mapped = np.zeros(reference.shape, np.int32)
    for ref_value, analysis_value in mapping.items():
        mapped[reference == ref_value] = analysis_value
    present = {int(v) for v in np.unique(reference)} - {0}
    return mapped, present - set(mapping)


@dataclass
class _ScoredCase:
    case: Case
    row: dict[str, Any]
    scores: dict[int, dict[str, float]]
    predicted_voxels: dict[int, int]
    reference_voxels: dict[int, int]


class SegmentationScorer:
    """Dice and 95th-percentile Hausdorff distance per label of the analysis.

    Scores are kept per case and the CSV columns are written in `finish`, once every case has
    shown which label values the analysis produces (an analysis that numbers components may
    produce fewer labels in one case than in another)."""

    def __init__(
        self, analysis_id: str, binary: bool = False, label_map: Mapping[int, int] | None = None
    ) -> None:
        self.analysis_id = analysis_id
        self.binary = binary
        self.label_map = dict(label_map) if label_map else None
        self.names: dict[int, str] = {}  # the analysis's label values and names
        self.cases: list[_ScoredCase] = []
        self.reference_values: dict[int, list[str]] = {}  # after mapping -> case ids
        self.unmapped_values: dict[int, list[str]] = {}  # not in --label-map -> case ids
        self.dice: dict[int, list[float]] = {}
        self.hd95: dict[int, list[float]] = {}
        self.unscored: list[int] = []

    def check_reference(self, case: Case) -> None:
        if isinstance(case.label, int):
            raise DatasetProblem(
                f"{case.describe()}: label is the class {case.label}; segmentation needs a "
                "label-map file"
            )

    def score(self, case: Case, image: Volume, results, row, registry) -> list[str]:
        from workstation.evaluation.metrics import segmentation_scores

        label_map = first_result(results, LabelMap, case)
        reference_file = read_volume(case.label, case, "label", registry)
        reference, resampled = label_on_image_grid(reference_file, image, case)
        predicted = label_map.volume.array
        if predicted.shape != reference.array.shape:
            raise DatasetProblem(
                f"{case.describe()}: the analysis returned a label map of shape "
                f"{predicted.shape} for image {case.image} of shape {image.shape}"
            )
        ref = reference.array
        if self.label_map is not None:
            ref, unmapped = apply_label_map(ref, self.label_map)
            for value in unmapped:
                self.unmapped_values.setdefault(value, []).append(case.case_id)
        if self.binary:
            predicted, ref = (predicted > 0).astype(np.uint8), (ref > 0).astype(np.uint8)
            produced = {1: FOREGROUND}
        else:
            produced = {label.value: label.name for label in label_map.labels}
        for value, name in produced.items():
            self.names.setdefault(value, name)
        in_reference = {int(v) for v in np.unique(ref)} - {0}
        for value in in_reference:
            self.reference_values.setdefault(value, []).append(case.case_id)
        values = sorted(set(produced) | in_reference)
        notes = [resampled] if resampled else []
        with library_warnings() as raised:
            scores = segmentation_scores(predicted, ref, values, image.spacing) if values else {}
        notes += [f"{case.describe()}: {text}" for text in raised]
        self.cases.append(
            _ScoredCase(
                case,
                row,
                scores,
                {v: int(np.count_nonzero(predicted == v)) for v in values},
                {v: int(np.count_nonzero(ref == v)) for v in values},
            )
        )
        return notes

    def finish(self, rows: list[dict[str, Any]]) -> list[str]:
        """Write each case's Dice/HD95 columns for the analysis's labels; return the notes:
        empty predictions per case, and reference values that were not scored."""
        notes: list[str] = []
        values = sorted(self.names)
        for scored in self.cases:
            for value in values:
                name = self.names[value]
                score = scored.scores.get(value, {"dice": float("nan"), "hd95_mm": float("nan")})
                scored.row[f"dice_{column(name)}"] = score["dice"]
                scored.row[f"hd95_mm_{column(name)}"] = score["hd95_mm"]
                self.dice.setdefault(value, []).append(score["dice"])
                self.hd95.setdefault(value, []).append(score["hd95_mm"])
                note = _empty_note(scored, value, name)
                if note:
                    add_note(scored.row, note)
                    notes.append(note)
        notes += self._unscored_notes(len(self.cases))
        return notes

    def _unscored_notes(self, count: int) -> list[str]:
        notes = []
        if self.unmapped_values:
            listed = _values_and_cases(self.unmapped_values, count)
            notes.append(
                f"reference label values {listed} are not in --label-map "
                f"{label_map_text(self.label_map or {})}; they are treated as background and "
                "not scored"
            )
        unscored = {v: c for v, c in self.reference_values.items() if v not in self.names}
        self.unscored = sorted(unscored)
        if unscored:
            produced = ", ".join(f"{v} {self.names[v]}" for v in sorted(self.names)) or "none"
            example = f"{min(unscored)}={min(self.names)}" if self.names else "4=1"
            where = "after --label-map " if self.label_map else ""
            notes.append(
                f"reference label values {_values_and_cases(unscored, count)} {where}are not "
                f"labels that {self.analysis_id} produces (it produces {produced}); they are not "
                "scored. If the reference numbers its labels differently, map its values to the "
                f"analysis's with --label-map REF=ANALYSIS (e.g. --label-map {example})"
            )
        return notes

    def summary(self) -> dict[str, Any]:
        return {
            self.names[v]: {
                "label": v,
                "dice": stats(self.dice[v]),
                "hd95_mm": stats(self.hd95[v]),
            }
            for v in sorted(self.dice)
        }

    def extras(self) -> dict[str, Any]:
        """What summary.json says about the labels: which were scored, how the reference was
        mapped, which reference values were left out."""
        return {
            "labels_scored": {str(v): self.names[v] for v in sorted(self.names)},
            "binary": self.binary,
            "label_map": (
                {str(k): v for k, v in self.label_map.items()} if self.label_map else None
            ),
            "reference_values_not_in_label_map": sorted(self.unmapped_values),
            "reference_values_not_scored": list(self.unscored),
        }

    def plots(self, out: Path, title: str) -> list[Path]:
        from workstation.evaluation.plots import dice_box_plot

        data = {self.names[v]: self.dice[v] for v in sorted(self.dice)}
        return [dice_box_plot(data, out / "dice_boxplot.png", title)] if data else []


def _empty_note(scored: _ScoredCase, value: int, name: str) -> str | None:
    predicted = scored.predicted_voxels.get(value, 0)
    reference = scored.reference_voxels.get(value, 0)
    where = scored.case.describe()
    if reference and not predicted:
        return (
            f"{where}: the prediction of '{name}' (label {value}) is empty where the reference "
            f"has {reference} voxels: Dice 0, HD95 not defined"
        )
    if predicted and not reference:
        return (
            f"{where}: the analysis labelled {predicted} voxels '{name}' (label {value}) where "
            "the reference has none: Dice and HD95 not defined (left out of the means)"
        )
    return None


def _values_and_cases(values: Mapping[int, list[str]], count: int) -> str:
    """Values grouped by how many cases have them: "3, 4 (in 1 of 2 cases), 5 (in 2 of 2 cases)"."""
    groups: dict[int, list[int]] = {}
    for value in sorted(values):
        groups.setdefault(len(values[value]), []).append(value)
    return ", ".join(
        f"{', '.join(str(v) for v in group)} (in {cases} of {count} cases)"
        for cases, group in sorted(groups.items(), key=lambda item: item[1][0])
    )
