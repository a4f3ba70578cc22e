"""Run one analysis over every case of a labelled data set, score it, write the report."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workstation.core.results import Classification, DerivedVolume, LabelMap
from workstation.core.volume import Volume
from workstation.evaluation.dataset import (
    Case,
    DatasetProblem,
    label_on_image_grid,
    read_dataset,
    read_volume,
)
from workstation.evaluation.report import write_cases_csv, write_summary_json

SEGMENTATION, CLASSIFICATION, RECONSTRUCTION = "segmentation", "classification", "reconstruction"
Progress = Callable[[str], Any]


@dataclass
class EvaluationSummary:
    """What `evaluate` wrote and found. `failed` lists (case, message) for cases not scored."""

    task: str
    out_dir: Path
    rows: list[dict[str, Any]]
    metrics: dict[str, Any]
    failed: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def task_for(returns: Sequence[str]) -> str:
    """Which kind of scoring an analysis gets, from the result types it declares."""
    if "classification" in returns:
        return CLASSIFICATION
    if "label_map" in returns:
        return SEGMENTATION
    if "derived_volume" in returns:
        return RECONSTRUCTION
    raise DatasetProblem(
        f"cannot evaluate an analysis returning {', '.join(returns) or 'nothing'}; evaluation "
        "needs a label map, a classification or a derived volume"
    )


def evaluate(
    analysis_id: str,
    dataset: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    params: Mapping[str, Any] | None = None,
    device: str = "auto",
    binary: bool = False,
    registry: Any = None,
    progress: Progress | None = None,
) -> EvaluationSummary:
    """Run `analysis_id` on each case of `dataset` (in-process, one model load per case as in
    `workstation run`) and write cases.csv, summary.json and a plot into `out_dir`.

    `binary`: score any non-zero label as one foreground (for analyses that number components).
    Raises DatasetProblem for an unusable data set and UnknownAnalysis for an unknown id; a bad
    case is recorded in `failed` with its name and file and the other cases are still scored.
    """
    from workstation.plugins.context import AnalysisInputs
    from workstation.plugins.manager import load_registry
    from workstation.plugins.runner import Runner

    report = progress or (lambda message: None)
    registry = registry if registry is not None else load_registry()
    spec = registry.analysis(analysis_id).spec
    task = task_for(spec.returns)
    cases = read_dataset(dataset)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scorer = {
        SEGMENTATION: _SegmentationScorer(binary),
        CLASSIFICATION: _ClassificationScorer(),
        RECONSTRUCTION: _ReconstructionScorer(),
    }[task]
    rows, failed, notes = [], [], []
    with Runner(registry, store_dir=None, isolated=False) as runner:
        for case in cases:
            report(f"[{case.index + 1}/{len(cases)}] {case.case_id}: running {analysis_id}")
            row: dict[str, Any] = {"case": case.case_id, "image": str(case.image)}
            row["reference"] = str(case.label)
            clock = time.perf_counter()
            try:
                scorer.check_reference(case)
                image = read_volume(case.image, case, "image", registry)
                outcome = runner.run(
                    analysis_id,
                    AnalysisInputs(volume=image, source_path=str(case.image)),
                    params=params,
                    device=device,
                )
                row["device"] = outcome.device
                row["run_s"] = round(outcome.duration_s, 3)
                if not outcome.ok:
                    raise DatasetProblem(
                        f"{case.describe()}: {analysis_id} {outcome.outcome} on {case.image}: "
                        f"{outcome.error}"
                    )
                note = scorer.score(case, image, outcome.results, row, registry)
            except DatasetProblem as error:
                row["status"], row["error"] = "failed", str(error)
                failed.append((case.case_id, str(error)))
                report(f"  {error}")
            else:
                row["status"] = "scored"
                if note:
                    notes.append(note)
                    report(f"  note: {note}")
            row["total_s"] = round(time.perf_counter() - clock, 3)
            rows.append(row)
    report("computing summary metrics")
    metrics = scorer.summary()
    files = [write_cases_csv(rows, out / "cases.csv")]
    files += scorer.plots(out, f"{analysis_id} on {Path(dataset).name}")
    summary = {
        "analysis": analysis_id,
        "analysis_version": spec.version,
        "task": task,
        "dataset": str(dataset),
        "parameters": dict(params or {}),
        "cases": len(cases),
        "scored": len(cases) - len(failed),
        "failed": [{"case": c, "error": e} for c, e in failed],
        "notes": notes,
        "metrics": metrics,
        "files": [p.name for p in files] + ["summary.json"],
    }
    files.append(write_summary_json(summary, out / "summary.json"))
    return EvaluationSummary(task, out, rows, metrics, failed, notes, files)


def _column(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_") or "label"


def _stats(values: Sequence[float]) -> dict[str, float]:
    finite = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if finite.size == 0:
        return {"mean": float("nan"), "median": float("nan"), "std": float("nan"), "cases": 0}
    return {
        "mean": float(finite.mean()),
        "median": float(np.median(finite)),
        "std": float(finite.std()),
        "cases": int(finite.size),
    }


def _first(results: Sequence[Any], kind: type, case: Case) -> Any:
    for result in results:
        if isinstance(result, kind):
            return result
    raise DatasetProblem(f"{case.describe()}: the analysis returned no {kind.__name__}")


class _SegmentationScorer:
    """Dice and HD95 per label, against a label-map file."""

    def __init__(self, binary: bool) -> None:
        self.binary = binary
        self.names: dict[int, str] = {}
        self.dice: dict[int, list[float]] = {}
        self.hd95: dict[int, list[float]] = {}

    def check_reference(self, case: Case) -> None:
        if isinstance(case.label, int):
            raise DatasetProblem(
                f"{case.describe()}: label is the class {case.label}; segmentation needs a "
                "label-map file"
            )

    def score(self, case: Case, image: Volume, results, row, registry) -> str | None:
        from workstation.evaluation.metrics import segmentation_scores

        label_map = _first(results, LabelMap, case)
        reference_file = read_volume(case.label, case, "label", registry)
        reference, note = label_on_image_grid(reference_file, image, case)
        predicted = label_map.volume.array
        if predicted.shape != reference.array.shape:
            raise DatasetProblem(
                f"{case.describe()}: the analysis returned a label map of shape "
                f"{predicted.shape} for image {case.image} of shape {image.shape}"
            )
        ref = reference.array
        if self.binary:
            predicted, ref = (predicted > 0).astype(np.uint8), (ref > 0).astype(np.uint8)
            names = {1: "foreground"}
        else:
            names = {lab.value: lab.name for lab in label_map.labels}
            for value in np.unique(ref):
                names.setdefault(int(value), f"label {int(value)}")
            names.pop(0, None)
        for value, name in names.items():
            self.names.setdefault(value, name)
        values = sorted(self.names)
        scores = segmentation_scores(predicted, ref, values, image.spacing)
        for value in values:
            column = _column(self.names[value])
            row[f"dice_{column}"] = scores[value]["dice"]
            row[f"hd95_mm_{column}"] = scores[value]["hd95_mm"]
            self.dice.setdefault(value, []).append(scores[value]["dice"])
            self.hd95.setdefault(value, []).append(scores[value]["hd95_mm"])
        return note

    def summary(self) -> dict[str, Any]:
        return {
            self.names[v]: {
                "label": v,
                "dice": _stats(self.dice[v]),
                "hd95_mm": _stats(self.hd95[v]),
            }
            for v in sorted(self.dice)
        }

    def plots(self, out: Path, title: str) -> list[Path]:
        from workstation.evaluation.plots import dice_box_plot

        data = {self.names[v]: self.dice[v] for v in sorted(self.dice)}
        return [dice_box_plot(data, out / "dice_boxplot.png", title)] if data else []


class _ClassificationScorer:
    """ROC AUC and confusion-matrix metrics against an integer class per case."""

    def __init__(self) -> None:
        self.classes: list[str] | None = None
        self.truth: list[int] = []
        self.probabilities: list[list[float]] = []

    def check_reference(self, case: Case) -> None:
        if not isinstance(case.label, int):
            raise DatasetProblem(
                f"{case.describe()}: label {case.label} is a file; classification needs the "
                "class index (an integer) as the label"
            )

    def score(self, case: Case, image: Volume, results, row, registry) -> str | None:
        result = _first(results, Classification, case)
        classes = list(result.labels)
        if self.classes is None:
            self.classes = classes
        elif classes != self.classes:
            raise DatasetProblem(
                f"{case.describe()}: the analysis answered with classes {classes}, earlier cases "
                f"with {self.classes}"
            )
        if not 0 <= int(case.label) < len(classes):
            raise DatasetProblem(
                f"{case.describe()}: label {case.label} is not a class index of "
                f"{classes} (0..{len(classes) - 1})"
            )
        probabilities = [float(p) for p in result.probabilities]
        predicted = int(np.argmax(probabilities))
        row["truth"] = classes[case.label]
        row["predicted"] = classes[predicted]
        row["correct"] = int(predicted == case.label)
        for name, p in zip(classes, probabilities, strict=True):
            row[f"p_{_column(name)}"] = p
        self.truth.append(int(case.label))
        self.probabilities.append(probabilities)
        return None

    def summary(self) -> dict[str, Any]:
        from workstation.evaluation.metrics import classification_scores

        if not self.truth or self.classes is None:
            return {}
        return classification_scores(self.truth, self.probabilities, self.classes)

    def plots(self, out: Path, title: str) -> list[Path]:
        from workstation.evaluation.metrics import binary_roc_auc, roc_curve
        from workstation.evaluation.plots import roc_plot

        if not self.truth or self.classes is None:
            return []
        scores = np.asarray(self.probabilities)
        truth = np.asarray(self.truth)
        shown = [1] if len(self.classes) == 2 else range(len(self.classes))
        curves = {}
        for k in shown:
            positive = (truth == k).astype(int)
            if positive.min() == positive.max():
                continue  # one class only: no curve to draw
            fpr, tpr = roc_curve(positive, scores[:, k])
            auc = binary_roc_auc(positive, scores[:, k])
            curves[self.classes[k]] = (fpr, tpr, auc)
        return [roc_plot(curves, out / "roc.png", title)] if curves else []


class _ReconstructionScorer:
    """PSNR and SSIM of the derived volume against a reference image."""

    def __init__(self) -> None:
        self.case_ids: list[str] = []
        self.psnr: list[float] = []
        self.ssim: list[float] = []

    def check_reference(self, case: Case) -> None:
        if isinstance(case.label, int):
            raise DatasetProblem(
                f"{case.describe()}: label is the class {case.label}; reconstruction needs a "
                "reference image file"
            )

    def score(self, case: Case, image: Volume, results, row, registry) -> str | None:
        from workstation.evaluation.metrics import reconstruction_scores

        output = _first(results, DerivedVolume, case).volume
        reference = read_volume(case.label, case, "reference", registry)
        note = None
        if not reference.geometry.is_close(output.geometry, tol_mm=1e-3):
            reference = reference.resample_to(output, order=1)
            note = (
                f"{case.describe()}: reference {case.label} is on a different grid than the "
                "output; resampled onto it (linear)"
            )
        scores = reconstruction_scores(output.array, reference.array)
        row.update(scores)
        self.case_ids.append(case.case_id)
        self.psnr.append(scores["psnr_db"])
        self.ssim.append(scores["ssim"])
        return note

    def summary(self) -> dict[str, Any]:
        return {"psnr_db": _stats(self.psnr), "ssim": _stats(self.ssim)}

    def plots(self, out: Path, title: str) -> list[Path]:
        from workstation.evaluation.plots import reconstruction_plot

        if not self.case_ids:
            return []
        path = out / "psnr_ssim.png"
        return [reconstruction_plot(self.case_ids, self.psnr, self.ssim, path, title)]
