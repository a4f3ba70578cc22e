"""The declaration a user and the workstation see, without loading any model code."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

from workstation_monai_segmentation import plugin
from workstation_monai_segmentation.config import ANALYSIS_ID

from workstation.plugins.api import AnalysisSpec
from workstation.plugins.declarations import resolve_weights


def test_listing_the_plugin_imports_neither_torch_nor_monai():
    code = (
        "import sys, json; import workstation_monai_segmentation.plugin as p; "
        "specs = p.workstation_analyses(); "
        "print(json.dumps([specs[0].id, 'torch' in sys.modules, 'monai' in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    analysis_id, torch_loaded, monai_loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert analysis_id == ANALYSIS_ID
    assert not torch_loaded
    assert not monai_loaded


def test_entry_point_names_the_plugin_module():
    points = importlib.metadata.entry_points(group="workstation.plugins")
    found = [p for p in points if p.name == "monai_segmentation"]
    assert found and found[0].value == "workstation_monai_segmentation.plugin"
    assert found[0].load() is plugin


def test_declares_sliding_window_parameters_and_packaged_demo_weights():
    (spec,) = plugin.workstation_analyses()
    assert isinstance(spec, AnalysisSpec)
    names = {p.name for p in spec.parameters}
    assert {"roi_size", "overlap", "sw_batch_size", "blend_mode"} <= names
    assert spec.parameter("blend_mode").choices == ("gaussian", "constant")
    assert set(spec.returns) == {"label_map", "measurements"}
    weights = resolve_weights(spec.weights)
    assert weights is not None and weights.is_file()
    assert weights.stat().st_size < 20 * 1024 * 1024
    assert (weights.parent / "MODEL_CARD.md").is_file()
