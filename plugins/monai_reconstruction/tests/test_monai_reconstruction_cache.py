"""The second run on the same weights uses the networks kept in memory and restores the series
exactly as freshly loaded networks do."""

from __future__ import annotations

import numpy as np
import torch
from workstation_monai_reconstruction import plugin
from workstation_monai_reconstruction.config import ANALYSIS_ID
from workstation_monai_reconstruction.restore import run

from workstation.models import ModelCache
from workstation.plugins.api import AnalysisInputs, RunContext, Volume
from workstation.testing.phantoms import ct_phantom


def run_logged(volume):
    logs: list[str] = []
    ctx = RunContext(
        analysis_id=ANALYSIS_ID,
        params=plugin.workstation_analyses()[0].coerce_parameters({"simulate": True}),
        inputs=AnalysisInputs(volume=volume),
        device="cpu",
        on_log=lambda level, message: logs.append(message),
    )
    return run(ctx), logs


def test_kept_networks_restore_like_freshly_loaded_ones(monkeypatch):
    torch.set_num_threads(1)
    hu, _ = ct_phantom((3, 64, 64), (1.0, 1.0, 3.0), seed=5)
    volume = Volume(hu, (1.0, 1.0, 3.0), metadata={"modality": "CT"})
    monkeypatch.setattr("workstation.models.cache._CACHE", ModelCache())
    _, first_logs = run_logged(volume)
    second, second_logs = run_logged(volume)
    assert any("model loaded from model.pt" in m for m in first_logs)
    assert any("reused from memory" in m for m in second_logs)
    monkeypatch.setattr("workstation.models.cache._CACHE", ModelCache(max_entries=0))
    fresh, _ = run_logged(volume)
    assert np.array_equal(second[0].volume.array, fresh[0].volume.array)
    assert second[-1].rows == fresh[-1].rows
