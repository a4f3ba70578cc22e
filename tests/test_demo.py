"""The README's first command ends in `workstation demo`: without a display it must make the demo
data, index it, import records, run an analysis and say where everything went."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_headless_demo_indexes_imports_runs_and_reports(tmp_path: Path) -> None:
    store = tmp_path / "store"
    env = {**os.environ, "WORKSTATION_HOME": str(store), "QT_QPA_PLATFORM": "offscreen"}
    env.pop("DISPLAY", None)
    done = subprocess.run(
        [sys.executable, "-m", "workstation.cli", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "ran headless" in out and str(store) in out

    from workstation.dicom.catalog import Catalog
    from workstation.records.store import RecordsStore

    with Catalog(store) as catalog:
        patients = catalog.tree()
    modalities = sorted(
        s["modality"] for p in patients for st in p["studies"] for s in st["series"]
    )
    assert len(patients) == 3
    assert modalities == ["CT", "CT", "CT", "MR", "SEG"]  # the threshold run's SEG is indexed
    assert all(
        s["synthetic"]
        for p in patients
        for st in p["studies"]
        for s in st["series"]
        if s["modality"] != "SEG"
    )
    with RecordsStore(store) as records:
        linked = [p for p in records.patients() if p["imaging_patient_ids"]]
    assert len(linked) == 3  # every records patient finds their imaging by MRN

    run = json.loads((store / "demo-runs" / "threshold-bone" / "run.json").read_text())
    assert run["analysis"]["id"] == "threshold.segment"
    assert {o["kind"] for o in run["outputs"]} >= {"dicom_seg", "nifti", "csv"}
