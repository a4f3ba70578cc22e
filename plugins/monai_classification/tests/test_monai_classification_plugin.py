"""The declaration, the packaged demo weights, and runs through the host's runner on a DICOM
series, written with the fixtures every plugin author gets from `workstation.testing`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from workstation_monai_classification.config import ANALYSIS_ID

from workstation.plugins.declarations import resolve_weights

PLUGIN = "workstation_monai_classification.plugin"


def test_declared_and_listed_without_importing_torch_or_the_model(plugin_manager_factory):
    registry = plugin_manager_factory(PLUGIN).registry()
    assert registry.problems == []
    spec = registry.analysis(ANALYSIS_ID).spec
    assert spec.returns == ("classification",)
    assert [p.name for p in spec.parameters] == [
        "explanation",
        "occlusion_patch_mm",
        "batch_size",
        "precision",
    ]
    assert spec.parameter("explanation").choices == ("gradcam", "occlusion", "none")
    code = (
        f"import sys, {PLUGIN} as p; p.workstation_analyses(); "
        "print('workstation_monai_classification.inference' in sys.modules, "
        "'torch' in sys.modules, 'monai' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]


def test_demo_weights_and_model_card_ship_in_the_package(plugin_manager_factory):
    spec = plugin_manager_factory(PLUGIN).registry().analysis(ANALYSIS_ID).spec
    weights = resolve_weights(spec.weights)
    assert weights is not None and weights.is_file()
    assert weights.stat().st_size < 20 * 1024 * 1024
    card = (weights.parent / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "ROC AUC" in card and "synthetic" in card and "Not for clinical use" in card


def test_installed_through_its_entry_point():
    from importlib.metadata import entry_points

    found = entry_points(group="workstation.plugins")
    (entry,) = [e for e in found if e.name == "monai_classification"]
    assert entry.value == PLUGIN
    assert entry.dist.metadata["Name"] == "workstation-monai-classification"


def test_runs_on_a_dicom_series_with_the_map_on_its_grid(
    synthetic_ct_volume, run_analysis, tmp_path
):
    results = run_analysis(
        ANALYSIS_ID, synthetic_ct_volume, plugins=[PLUGIN], out_dir=tmp_path / "out"
    )
    classification = results.one("classification")
    heat_map = classification.explanation
    assert classification.labels == ["no liver lesion", "liver lesion"]
    assert abs(sum(classification.probabilities) - 1.0) < 1e-5
    assert heat_map is not None and heat_map.kind == "heat_map"
    assert heat_map.volume.geometry.is_close(synthetic_ct_volume.geometry, tol_mm=1e-6)
    assert heat_map.volume.source == synthetic_ct_volume.source
    assert heat_map.volume.array.dtype == np.float32
    assert heat_map.volume.array.min() >= 0.0 and heat_map.volume.array.max() <= 1.0
    assert "DEMO WEIGHTS" in classification.description
    assert "DEMO WEIGHTS" in heat_map.description
    assert heat_map.volume.metadata["demo_weights"] is True
    assert results.outcome.demo_weights is True
    written = [Path(o.path).name for o in results.outcome.outputs]
    assert any("explanation" in name for name in written), written


def test_explanation_none_returns_only_the_classification(synthetic_ct_volume, run_analysis):
    results = run_analysis(
        ANALYSIS_ID, synthetic_ct_volume, plugins=[PLUGIN], params={"explanation": "none"}
    )
    assert [r.kind for r in results] == ["classification"]
    assert results.one("classification").explanation is None


def test_unknown_explanation_and_out_of_range_patch_are_refused(synthetic_ct_volume, run_analysis):
    unknown = run_analysis(
        ANALYSIS_ID,
        synthetic_ct_volume,
        plugins=[PLUGIN],
        params={"explanation": "saliency"},
        check=False,
    )
    assert unknown.outcome.outcome == "refused"
    assert "'explanation'" in unknown.outcome.error and "gradcam" in unknown.outcome.error
    too_small = run_analysis(
        ANALYSIS_ID,
        synthetic_ct_volume,
        plugins=[PLUGIN],
        params={"occlusion_patch_mm": 1},
        check=False,
    )
    assert too_small.outcome.outcome == "refused"
    assert "'occlusion_patch_mm'" in too_small.outcome.error
