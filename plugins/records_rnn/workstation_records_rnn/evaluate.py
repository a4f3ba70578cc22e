"""Patient-level evaluation: a patient's score is the highest risk the model gave before the
outcome (or over the whole record when it never came); the label is whether it came."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from workstation_records_rnn.features import OUTCOME_CODE, History, training_example
from workstation_records_rnn.metrics import classification_report
from workstation_records_rnn.model import RiskGRU


def patient_scores(model: RiskGRU, histories: list[History]) -> tuple[np.ndarray, np.ndarray]:
    labels, scores = [], []
    model.eval()
    with torch.no_grad():
        for history in histories:
            example = training_example(history)
            if example is None:
                continue
            x, _, valid = example
            risk = torch.sigmoid(model(torch.from_numpy(x)[None]))[0].numpy()
            scores.append(float(risk[valid].max()))
            labels.append(OUTCOME_CODE in history.conditions)
    return np.array(labels), np.array(scores)


def evaluate(model: RiskGRU, histories: list[History], threshold: float = 0.5) -> dict[str, Any]:
    labels, scores = patient_scores(model, histories)
    return classification_report(labels, scores, threshold)
