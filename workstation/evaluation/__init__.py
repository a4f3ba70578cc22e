"""`workstation evaluate`: run an analysis over a labelled data set and score it.

`dataset` reads the cases, `provenance` checks the settings once and records what was evaluated,
`segmentation`, `classification` and `reconstruction` score the cases (with `metrics`, from
monai.metrics), `plots` draws the figures, `report` writes the CSV and JSON, and `evaluate` ties
them together.
"""

from workstation.evaluation.common import EvaluationRefused
from workstation.evaluation.dataset import Case, DatasetProblem, read_dataset
from workstation.evaluation.evaluate import EvaluationSummary, evaluate
from workstation.evaluation.segmentation import parse_label_map

__all__ = [
    "Case",
    "DatasetProblem",
    "EvaluationRefused",
    "EvaluationSummary",
    "evaluate",
    "parse_label_map",
    "read_dataset",
]
