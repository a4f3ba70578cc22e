"""The synthetic generator: Synthea's R4 shape, valid FHIR, reproducible, a real risk signal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from workstation.records.synth import generate, write_bundles


def test_same_seed_same_bytes_other_seed_other_patients(tmp_path: Path) -> None:
    write_bundles(tmp_path / "a", 2, seed=5)
    write_bundles(tmp_path / "b", 2, seed=5)
    write_bundles(tmp_path / "c", 2, seed=6)
    files = lambda d: {p.name: p.read_bytes() for p in (tmp_path / d).iterdir()}  # noqa: E731
    assert files("a") == files("b")
    assert set(files("a")) != set(files("c"))


def test_bundles_have_synthea_shape_and_validate_as_r4() -> None:
    from fhir.resources.R4B.bundle import Bundle

    bundle, truth = next(generate(1, seed=2))
    Bundle.model_validate(bundle)  # every entry is valid R4 (R4B models)
    assert bundle["type"] == "transaction"
    urls = {e["fullUrl"] for e in bundle["entry"]}
    assert all(u.startswith("urn:uuid:") for u in urls)
    assert all(e["request"]["method"] == "POST" for e in bundle["entry"])
    resources = [e["resource"] for e in bundle["entry"]]
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    types = [i.get("type", {}).get("coding", [{}])[0].get("code") for i in patient["identifier"]]
    assert types == [None, "MR", "SS", "DL", "PPN"]
    assert patient["identifier"][1]["value"] == truth.mrn
    extension_urls = {e["url"].rsplit("/", 1)[-1] for e in patient["extension"]}
    assert {"us-core-race", "us-core-ethnicity", "patient-birthPlace"} <= extension_urls
    panels = [
        r for r in resources if r.get("code", {}).get("coding", [{}])[0].get("code") == "85354-9"
    ]
    assert panels and all(
        [c["code"]["coding"][0]["code"] for c in p["component"]] == ["8462-4", "8480-6"]
        for p in panels
    )
    quantities = [r["valueQuantity"] for r in resources if "valueQuantity" in r]
    assert all(q["system"] == "http://unitsofmeasure.org" and q["code"] for q in quantities)
    # every clinical reference to the patient or an encounter is a full URL in this bundle
    for resource in resources:
        for key in ("subject", "patient", "encounter"):
            reference = (
                resource.get(key, {}).get("reference")
                if isinstance(resource.get(key), dict)
                else None
            )
            if reference:
                assert reference in urls


def test_imaging_studies_carry_study_uids_as_urn_oid() -> None:
    studies = [
        e["resource"]
        for bundle, truth in generate(12, seed=1)
        if truth.ckd
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "ImagingStudy"
    ]
    assert studies
    for study in studies:
        value = study["identifier"][0]["value"]
        assert value.startswith("urn:oid:2.25.") and value[8:].replace(".", "").isdigit()


def test_the_documented_risk_factors_drive_the_outcome() -> None:
    truths = [truth for _, truth in generate(100, seed=11)]
    outcome = np.array([t.outcome for t in truths])
    ckd = np.array([t.ckd for t in truths])
    assert 0.1 < outcome.mean() < 0.5
    assert outcome[ckd].mean() > 3 * outcome[~ckd].mean()


def test_outcome_is_recorded_as_a_condition(tmp_path: Path) -> None:
    truths = write_bundles(tmp_path, 30, seed=4)
    with_outcome = [t for t in truths if t.outcome]
    assert with_outcome
    for truth in truths:
        [path] = tmp_path.glob(f"*_{truth.patient_id}.json")
        codes = [
            e["resource"]["code"]["coding"][0]["code"]
            for e in json.loads(path.read_text())["entry"]
            if e["resource"]["resourceType"] == "Condition"
        ]
        assert ("14669001" in codes) == truth.outcome
    lines = (tmp_path / "outcomes.tsv").read_text().splitlines()
    assert lines[0].split("\t")[:3] == ["patient_id", "mrn", "outcome"] and len(lines) == 31
