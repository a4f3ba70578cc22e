"""Run one analysis over every case of a labelled data set, score it, write the report."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workstation.evaluation.classification import ClassificationScorer
from workstation.evaluation.common import EvaluationRefused, Scorer, add_note
from workstation.evaluation.dataset import Case, DatasetProblem, read_dataset, read_volume
from workstation.evaluation.provenance import DEMO_COLUMN, DEMO_TITLE, prepare
from workstation.evaluation.reconstruction import ReconstructionScorer
from workstation.evaluation.report import write_cases_csv, write_summary_json
from workstation.evaluation.segmentation import SegmentationScorer

SEGMENTATION, CLASSIFICATION, RECONSTRUCTION = "segmentation", "classification", "reconstruction"
Progress = Callable[[str], Any]

# Errors about the weights themselves: every case would fail the same way, so the first stops
# the evaluation (a refusal shown once, not once per case).
WEIGHTS_ERRORS = frozenset({"UntrustedModel", "BundleError", "BundleBuildError", "CheckpointError"})
_ROW_TAIL = ("status", "error", "notes", "total_s")


@dataclass
class EvaluationSummary:
    """What `evaluate` wrote and found. `failed` lists (case, message) for cases not scored;
    `notes` what the user should know about the scores (also in summary.json and on stderr)."""

    task: str
    out_dir: Path
    rows: list[dict[str, Any]]
    metrics: dict[str, Any]
    failed: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    demo_weights: bool = False

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
    weights: str | os.PathLike[str] | None = None,
    seed: int = 0,
    binary: bool = False,
    label_map: Mapping[int, int] | None = None,
    registry: Any = None,
    store_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> EvaluationSummary:
    """Run `analysis_id` on each case of `dataset` (in-process, as `workstation run` does, with
    the same `weights`, `device` and `seed` for every case) and write cases.csv, summary.json
    and a plot into `out_dir`.

    `binary`: score any non-zero label as one foreground (for analyses that number components).
    `label_map`: {reference value: analysis value} for segmentation references numbered
    differently; reference values it leaves out are background. `store_dir`: the store whose
    trusted models apply (None: the default store); the case runs are not recorded in it.

    Raises DatasetProblem for an unusable data set (a missing image or label file is found before
    any case runs), EvaluationRefused for settings refused for every case (parameters, device,
    missing or untrusted weights) and UnknownAnalysis for an unknown id. A bad case is recorded
    in `failed` with its name and file and the other cases are still scored.
    """
    from workstation.plugins.context import AnalysisInputs
    from workstation.plugins.manager import load_registry
    from workstation.plugins.runner import Runner

    report = progress or (lambda message: None)
    registry = registry if registry is not None else load_registry()
    entry = registry.analysis(analysis_id)
    task = task_for(entry.spec.returns)
    if label_map and task != SEGMENTATION:
        raise EvaluationRefused(f"--label-map applies to segmentation; {analysis_id} is {task}")
    cases = read_dataset(dataset)
    check_files(cases)
    setup = prepare(entry, params, device, weights, seed)
    if setup.demo_weights:
        report(f"note: {analysis_id} runs with its DEMO weights ({setup.weights})")
    scorer = _scorer(task, analysis_id, binary, label_map)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    clock_all = time.perf_counter()
    rows: list[dict[str, Any]] = []
    failed: list[tuple[str, str]] = []
    notes: list[str] = []
    # Not recorded in the run history; isolated exactly when `workstation run` would be (a
    # bundle folder as weights), trust checked in the store given.
    with Runner(registry, store_dir=None, isolated=None, trust_store_dir=store_dir) as runner:
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
                    params=setup.parameters,
                    device=setup.device,
                    weights=weights,
                    seed=seed,
                )
                row["device"] = outcome.device
                row["run_s"] = round(outcome.duration_s, 3)
                if not outcome.ok:
                    _stop_if_same_for_every_case(analysis_id, case, outcome)
                    raise DatasetProblem(
                        f"{case.describe()}: {analysis_id} {outcome.outcome} on {case.image}: "
                        f"{outcome.error}"
                    )
                setup.demo_weights = setup.demo_weights or bool(outcome.demo_weights)
                case_notes = scorer.score(case, image, outcome.results, row, registry)
            except EvaluationRefused:
                raise
            except Exception as error:  # a bad case is reported and the others are still scored
                message = str(error)
                if not isinstance(error, DatasetProblem):
                    message = f"{case.describe()}: scoring failed: {type(error).__name__}: {error}"
                row["status"], row["error"] = "failed", message
                failed.append((case.case_id, message))
                report(f"  {message}")
            else:
                row["status"] = "scored"
                for note in case_notes:
                    add_note(row, note)
                    report(f"  note: {note}")
                notes += case_notes
            row["total_s"] = round(time.perf_counter() - clock, 3)
            rows.append(row)
    report("computing summary metrics")
    finish_notes = scorer.finish(rows)
    for note in finish_notes:
        report(f"note: {note}")
    notes += finish_notes
    metrics = scorer.summary()
    for note in getattr(scorer, "notes", []):  # what computing the summary had to say
        if note not in notes:
            report(f"note: {note}")
            notes.append(note)
    rows = [_tail_last(row, setup.demo_weights) for row in rows]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = [write_cases_csv(rows, out / "cases.csv")]
    files += scorer.plots(out, plot_title(analysis_id, dataset, setup.demo_weights))
    summary = {
        "analysis": analysis_id,
        "analysis_version": entry.spec.version,
        "analysis_title": entry.spec.title,
        "task": task,
        "dataset": str(dataset),
        **setup.record(),
        "started_at": started,
        "duration_s": round(time.perf_counter() - clock_all, 3),
        "cases": len(cases),
        "scored": len(cases) - len(failed),
        "failed": [{"case": c, "error": e} for c, e in failed],
        "notes": notes,
        "scoring": scorer.extras(),
        "metrics": metrics,
        "files": [p.name for p in files] + ["summary.json"],
    }
    files.append(write_summary_json(summary, out / "summary.json"))
    return EvaluationSummary(task, out, rows, metrics, failed, notes, files, setup.demo_weights)


def check_files(cases: Sequence[Case]) -> None:
    """Every image and label file named by the data set exists, before any model runs; the
    error lists each missing one with its case."""
    missing = []
    for case in cases:
        for role, path in (("image", case.image), ("label", case.label)):
            if isinstance(path, Path) and not path.exists():
                missing.append(f"{case.describe()}: {role} {path}: no such file or folder")
    if missing:
        shown = missing[:10] + ([f"... and {len(missing) - 10} more"] if len(missing) > 10 else [])
        raise DatasetProblem(
            f"{len(missing)} file(s) of the data set are missing; nothing was run:\n  "
            + "\n  ".join(shown)
        )


def plot_title(analysis_id: str, dataset: str | os.PathLike[str], demo: bool) -> str:
    path = Path(dataset)
    name = f"{path.parent.name}/{path.name}" if path.suffix == ".json" else path.name
    title = f"{analysis_id} on {name}"
    return f"{title}\n{DEMO_TITLE}" if demo else title


def _scorer(
    task: str, analysis_id: str, binary: bool, label_map: Mapping[int, int] | None
) -> Scorer:
    if task == SEGMENTATION:
        return SegmentationScorer(analysis_id, binary, label_map)
    if task == CLASSIFICATION:
        return ClassificationScorer()
    return ReconstructionScorer()


def _stop_if_same_for_every_case(analysis_id: str, case: Case, outcome: Any) -> None:
    """A refusal of the weights (not trusted, not loadable) would repeat for every case."""
    error = str(outcome.error or "")
    if WEIGHTS_ERRORS.intersection(getattr(outcome, "error_types", ())):
        raise EvaluationRefused(
            f"{analysis_id} {outcome.outcome} on {case.describe()}, and would be for every case, "
            f"so the evaluation stopped: {error}"
        )


def _tail_last(row: dict[str, Any], demo: bool) -> dict[str, Any]:
    """Status, error, notes and timing after the scores; the demo mark on every row."""
    ordered = {k: v for k, v in row.items() if k not in _ROW_TAIL}
    if demo:
        ordered[DEMO_COLUMN] = "yes"
    ordered.update({k: row[k] for k in _ROW_TAIL if k in row})
    return ordered
