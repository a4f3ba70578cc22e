"""The fixtures plugin authors get from `workstation.testing` (pytest11 entry point)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from workstation.plugins.api import AnalysisSpec, Parameter


def test_pytest_plugin_imports_nothing_heavy():
    code = (
        "import sys, workstation.testing.pytest_plugin\n"
        "heavy = [m for m in ('numpy', 'pydicom', 'highdicom', 'torch', 'monai', 'PySide6',"
        " 'workstation.plugins', 'workstation.dicom') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_synthetic_series_is_indexed_in_the_temporary_store(
    workstation_store, synthetic_ct_series, synthetic_ct_volume
):
    from workstation.dicom.catalog import Catalog

    assert os.environ["WORKSTATION_HOME"] == str(workstation_store)
    with Catalog(workstation_store) as catalog:
        (patient,) = catalog.tree()
    assert patient["studies"][0]["series"][0]["series_id"] == synthetic_ct_series.series_id
    assert patient["studies"][0]["series"][0]["synthetic"] is True
    np.testing.assert_array_equal(synthetic_ct_volume.array, synthetic_ct_series.hu)
    assert synthetic_ct_volume.source.paths  # DICOM writers can reference it
    lesion = synthetic_ct_series.labels == synthetic_ct_series.label_id("lesion")
    assert lesion.any()
    assert (
        synthetic_ct_series.hu[lesion].mean()
        < synthetic_ct_series.hu[
            synthetic_ct_series.labels == synthetic_ct_series.label_id("liver")
        ].mean()
    )


def test_plugin_manager_factory_holds_only_the_given_plugins(plugin_manager_factory):
    spec = AnalysisSpec(
        id="mine.copy", title="Copy", version="0.1", entry="workstation_threshold.segment:run"
    )
    registry = plugin_manager_factory(spec).registry()
    assert set(registry.analyses) == {"mine.copy"}
    registry = plugin_manager_factory("workstation_threshold.plugin", spec).registry()
    assert set(registry.analyses) == {"mine.copy", "threshold.segment"}


def test_run_analysis_runs_a_spec_and_records_the_run(
    synthetic_ct_volume, run_analysis, workstation_store, tmp_path
):
    from workstation.plugins.run_store import RunStore

    spec = AnalysisSpec(
        id="mine.threshold",
        title="My threshold",
        version="0.2",
        entry="workstation_threshold.segment:run",
        parameters=(
            Parameter("lower", "float", 200.0, help="lower"),
            Parameter("upper", "float", 3071.0, help="upper"),
            Parameter("min_volume_ml", "float", 0.0, help="size"),
            Parameter("max_components", "int", 5, help="count"),
            Parameter("connectivity", "choice", "faces", choices=("faces",), help="joins"),
        ),
        returns=("label_map", "measurements"),
    )
    results = run_analysis(spec, synthetic_ct_volume, out_dir=tmp_path / "out")
    assert [r.kind for r in results] == ["label_map", "measurements"]
    assert (tmp_path / "out" / "run.json").exists()
    with RunStore(workstation_store) as store:
        (record,) = store.list()
    assert record.analysis_id == "mine.threshold" and record.outcome == "succeeded"


def test_run_analysis_reports_a_failure_with_the_hosts_message(synthetic_ct_volume, run_analysis):
    from workstation.testing.helpers import AnalysisFailed

    spec = AnalysisSpec(id="mine.broken", title="Broken", version="0.1", entry="json:loads")
    with pytest.raises(AnalysisFailed, match=r"mine\.broken failed: TypeError") as caught:
        run_analysis(spec, synthetic_ct_volume)
    assert caught.value.outcome.outcome == "failed"
