"""The demo weights on held-out synthetic patients, the features' two sources, and a real run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from workstation_records_rnn import plugin
from workstation_records_rnn.config import ANALYSIS_ID
from workstation_records_rnn.evaluate import patient_scores
from workstation_records_rnn.features import (
    ATTRIBUTION_GROUPS,
    history_from_bundle,
    history_from_timeline,
    to_sequence,
)
from workstation_records_rnn.inference import run
from workstation_records_rnn.metrics import classification_report, roc_auc
from workstation_records_rnn.model import load_checkpoint

from workstation.cli import main as workstation
from workstation.plugins.api import AnalysisInputs, Report, RunContext, TimeSeries
from workstation.plugins.declarations import resolve_weights
from workstation.plugins.manager import load_registry
from workstation.plugins.runner import Runner

HELD_OUT_SEED = 2026  # the demo weights were trained and validated on seed 0


def demo_weights() -> Path:
    spec = plugin.workstation_analyses()[0]
    return Path(resolve_weights(spec.weights))


@pytest.fixture(scope="module")
def held_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("held-out")
    assert (
        workstation(
            [
                "records",
                "synth",
                "--patients",
                "300",
                "--seed",
                str(HELD_OUT_SEED),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return out


@pytest.fixture(scope="module")
def store(held_out: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first five held-out patients imported into a store, as a user would."""
    store = tmp_path_factory.mktemp("store")
    paths = [str(p) for p in sorted(held_out.glob("*.json"))[:5]]
    assert workstation(["--store", str(store), "records", "import", *paths]) == 0
    return store


def test_roc_auc_matches_a_hand_count() -> None:
    # positives 0.9, 0.4; negatives 0.5, 0.1: 3 of 4 pairs ordered right
    assert roc_auc(np.array([1, 1, 0, 0]), np.array([0.9, 0.4, 0.5, 0.1])) == 0.75


def test_demo_weights_reach_auc_085_on_held_out_synthetic_patients(held_out: Path) -> None:
    torch.set_num_threads(1)
    model, meta = load_checkpoint(demo_weights(), torch.device("cpu"))
    assert meta["demo"] is True
    histories = [
        history_from_bundle(json.loads(p.read_text())) for p in sorted(held_out.glob("*.json"))
    ]
    labels, scores = patient_scores(model, histories)
    report = classification_report(labels, scores, threshold=0.5)
    print("held-out:", json.dumps(report))
    assert report["positives"] >= 30
    assert report["roc_auc"] >= 0.85
    assert report["recall"] > 0.5 and report["precision"] > 0.3


def test_features_from_the_store_equal_features_from_the_bundle(
    held_out: Path, store: Path
) -> None:
    from workstation.records import load_patient_records

    for path in sorted(held_out.glob("*.json"))[:5]:
        bundle = json.loads(path.read_text())
        patient_id = next(
            e["resource"]["id"]
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == "Patient"
        )
        from_bundle = to_sequence(history_from_bundle(bundle))
        from_store = to_sequence(history_from_timeline(load_patient_records(store, patient_id)))
        np.testing.assert_allclose(from_store[0], from_bundle[0])
        np.testing.assert_allclose(from_store[1], from_bundle[1], atol=1e-5)


def context(store: Path, patient: str, steps: int = 16) -> RunContext:
    from workstation.records import load_patient_records

    inputs = AnalysisInputs(
        patient_id=patient, records=lambda: load_patient_records(store, patient)
    )
    return RunContext(ANALYSIS_ID, {"ig_steps": steps}, inputs, weights=demo_weights())


def test_run_gives_a_labelled_risk_curve_with_complete_attributions(store: Path) -> None:
    from workstation.records import RecordsStore

    with RecordsStore(store) as records:
        mrn = records.patients()[0]["identifiers"][0]
        timeline = records.timeline(mrn)
    curve, report = run(context(store, mrn, steps=64))
    assert isinstance(curve, TimeSeries) and isinstance(report, Report)
    assert curve.patient.patient_id == mrn
    assert "DEMO WEIGHTS" in curve.description and "DEMO WEIGHTS" in report.text
    assert all(0.0 <= v <= 1.0 for v in curve.values)
    assert curve.times == sorted(curve.times)
    first = min(s.times.min() for s in timeline.observations.values())
    assert curve.times[0] > np.datetime_as_string(np.datetime64(int(first), "s"))
    assert set(curve.attributions) == set(ATTRIBUTION_GROUPS)
    # integrated gradients are complete: they add up to the last logit minus the baseline's
    model, _ = load_checkpoint(demo_weights(), torch.device("cpu"))
    x = torch.from_numpy(to_sequence(history_from_timeline(timeline))[1])[None]
    with torch.no_grad():
        gap = (model(x)[0, -1] - model(torch.zeros_like(x))[0, -1]).item()
    total = sum(sum(row) for row in curve.attributions.values())
    assert total == pytest.approx(gap, abs=0.05 * max(1.0, abs(gap)))


def test_runs_headless_through_the_host_runner(store: Path) -> None:
    from workstation.plugins.inputs import with_patient
    from workstation.records import RecordsStore

    with RecordsStore(store) as records:
        mrn = records.patients()[1]["identifiers"][0]
    registry = load_registry([plugin])
    with Runner(registry) as runner:
        outcome = runner.run(
            ANALYSIS_ID, with_patient(AnalysisInputs(), store, mrn), isolated=False, device="cpu"
        )
    assert outcome.ok, outcome.error
    assert {type(r).__name__ for r in outcome.results} == {"TimeSeries", "Report"}


def test_a_patient_without_the_models_variables_gets_a_clear_error(tmp_path: Path) -> None:
    patient = {"resourceType": "Patient", "id": "empty", "gender": "male"}
    (tmp_path / "p.json").write_text(json.dumps(patient))
    workstation(["--store", str(tmp_path / "s"), "records", "import", str(tmp_path / "p.json")])
    with pytest.raises(ValueError, match="none of the model's variables: creatinine"):
        run(context(tmp_path / "s", "empty"))
