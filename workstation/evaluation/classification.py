"""Classification scoring: ROC AUC and confusion-matrix metrics against a class index per case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from workstation.core.results import Classification
from workstation.core.volume import Volume
from workstation.evaluation.common import column, first_result
from workstation.evaluation.dataset import Case, DatasetProblem
from workstation.evaluation.quiet import library_warnings


class ClassificationScorer:
    """Per case: truth, prediction and each class's probability; over the data set: ROC AUC and
    the confusion-matrix metrics (`metrics.classification_scores`)."""

    def __init__(self) -> None:
        self.classes: list[str] | None = None
        self.truth: list[int] = []
        self.probabilities: list[list[float]] = []
        self.notes: list[str] = []

    def check_reference(self, case: Case) -> None:
        if not isinstance(case.label, int):
            raise DatasetProblem(
                f"{case.describe()}: label {case.label} is a file; classification needs the "
                "class index (an integer) as the label"
            )

    def score(self, case: Case, image: Volume, results, row, registry) -> list[str]:
        result = first_result(results, Classification, case)
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
            row[f"p_{column(name)}"] = p
        self.truth.append(int(case.label))
        self.probabilities.append(probabilities)
        return []

    def finish(self, rows: list[dict[str, Any]]) -> list[str]:
        if self.classes is None:
            return []
        missing = [c for i, c in enumerate(self.classes) if i not in set(self.truth)]
        if missing:
            self.notes.append(
                f"no case of class {', '.join(repr(c) for c in missing)} in the data set: ROC AUC "
                "is not defined, and that class's recall is not either"
            )
        return list(self.notes)

    def summary(self) -> dict[str, Any]:
        from workstation.evaluation.metrics import classification_scores

        if not self.truth or self.classes is None:
            return {}
        with library_warnings() as raised:
            scores = classification_scores(self.truth, self.probabilities, self.classes)
        self.notes += raised
        return scores

    def extras(self) -> dict[str, Any]:
        return {}

    def plots(self, out: Path, title: str) -> list[Path]:
        from workstation.evaluation.metrics import binary_roc_auc, roc_curve
        from workstation.evaluation.plots import roc_plot

        if not self.truth or self.classes is None:
            return []
        scores = np.asarray(self.probabilities)
        truth = np.asarray(self.truth)
        shown = [1] if len(self.classes) == 2 else range(len(self.classes))
        curves = {}
        with library_warnings():
            for k in shown:
                positive = (truth == k).astype(int)
                if positive.min() == positive.max():
                    continue  # one class only: no curve to draw
                fpr, tpr = roc_curve(positive, scores[:, k])
                auc = binary_roc_auc(positive, scores[:, k])
                curves[self.classes[k]] = (fpr, tpr, auc)
        return [roc_plot(curves, out / "roc.png", title)] if curves else []
