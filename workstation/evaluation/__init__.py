"""`workstation evaluate`: run an analysis over a labelled data set and score it.

`dataset` reads the cases, `metrics` scores them with monai.metrics, `plots` draws the figures,
`report` writes the CSV and JSON, and `evaluate` ties them together.
"""

from workstation.evaluation.dataset import Case, DatasetProblem, read_dataset
from workstation.evaluation.evaluate import EvaluationSummary, evaluate

__all__ = ["Case", "DatasetProblem", "EvaluationSummary", "evaluate", "read_dataset"]
