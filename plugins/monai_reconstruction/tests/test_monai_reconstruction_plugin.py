"""The declaration a user and the workstation see, without loading any model code."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

from workstation_monai_reconstruction import plugin
from workstation_monai_reconstruction.config import ANALYSIS_ID

from workstation.plugins.declarations import resolve_weights


def test_listing_the_plugin_imports_neither_torch_nor_monai():
    code = (
        "import sys, json; import workstation_monai_reconstruction.plugin as p; "
        "specs = p.workstation_analyses(); "
        "print(json.dumps([specs[0].id, 'torch' in sys.modules, 'monai' in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [ANALYSIS_ID, False, False]


def test_installed_through_its_entry_point():
    points = importlib.metadata.entry_points(group="workstation.plugins")
    (found,) = [p for p in points if p.name == "monai_reconstruction"]
    assert found.value == "workstation_monai_reconstruction.plugin"
    assert found.dist.metadata["Name"] == "workstation-monai-reconstruction"


def test_declares_modes_simulation_and_packaged_demo_weights(plugin_manager_factory):
    registry = plugin_manager_factory("workstation_monai_reconstruction.plugin").registry()
    assert registry.problems == []
    spec = registry.analysis(ANALYSIS_ID).spec
    assert spec.parameter("mode").choices == ("auto", "ct_denoise", "mr_kspace")
    assert spec.parameter("mode").default == "auto"
    assert spec.parameter("simulate").default is False
    assert spec.parameter("mask").choices == ("equispaced", "random")
    assert set(spec.returns) == {"derived_volume", "heat_map", "measurements"}
    weights = resolve_weights(spec.weights)
    assert weights is not None and weights.is_file()
    assert weights.stat().st_size < 20 * 1024 * 1024
    card = (weights.parent / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "Not for clinical use" in card and "PSNR" in card
    assert plugin.WORKSTATION_PLUGIN_API == "1.2"  # declares modalities
