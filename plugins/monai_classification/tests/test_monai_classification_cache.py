"""The second run on the same weights uses the network kept in memory, and a Grad-CAM run
before it leaves nothing behind: the same probabilities and map as a freshly loaded network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from workstation_monai_classification import plugin
from workstation_monai_classification.config import ANALYSIS_ID
from workstation_monai_classification.inference import run
from workstation_monai_classification.phantoms import make_cases

from workstation.models import ModelCache
from workstation.plugins.api import AnalysisInputs, RunContext


def run_logged(volume):
    logs: list[str] = []
    ctx = RunContext(
        analysis_id=ANALYSIS_ID,
        params=plugin.workstation_analyses()[0].coerce_parameters({"explanation": "gradcam"}),
        inputs=AnalysisInputs(volume=volume),
        device="cpu",
        on_log=lambda level, message: logs.append(message),
    )
    return run(ctx), logs


def test_kept_network_gives_what_a_fresh_one_gives_after_gradcam_runs(monkeypatch):
    torch.set_num_threads(1)
    volume = make_cases(1, 2031)[0].volume  # with a lesion: Grad-CAM has something to show
    monkeypatch.setattr("workstation.models.cache._CACHE", ModelCache())
    first, first_logs = run_logged(volume)
    second, second_logs = run_logged(volume)
    assert any("model loaded from model.pt" in m for m in first_logs)
    assert any("reused from memory" in m for m in second_logs)
    monkeypatch.setattr("workstation.models.cache._CACHE", ModelCache(max_entries=0))
    fresh, _ = run_logged(volume)
    assert second.probabilities == pytest.approx(fresh.probabilities, abs=1e-6)
    assert first.probabilities == pytest.approx(fresh.probabilities, abs=1e-6)
    assert np.allclose(second.explanation.volume.array, fresh.explanation.volume.array, atol=1e-6)
    assert fresh.explanation.volume.array.max() > 0
