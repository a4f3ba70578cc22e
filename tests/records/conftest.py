"""Fixtures for the records tests: small FHIR resources and bundles, and a store folder."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
MR_TYPE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}


def patient(pid: str = "p1", mrn: str = "MRN-1", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [
            {"system": "urn:test:ids", "value": f"other-{pid}"},
            {"type": MR_TYPE, "system": "urn:test:mrn", "value": mrn},
        ],
        "name": [{"family": "Test", "given": ["Pat"]}],
        "gender": "female",
        "birthDate": "1960-02-03",
        **extra,
    }


def observation(
    oid: str,
    subject: str = "Patient/p1",
    code: str = "2160-0",
    value: float | None = 1.0,
    unit: str | None = "mg/dL",
    when: str = "2020-01-02T10:00:00Z",
    **extra: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code, "display": f"code {code}"}]},
        "subject": {"reference": subject},
        "effectiveDateTime": when,
    }
    if value is not None:
        quantity: dict[str, Any] = {"value": value}
        if unit:
            quantity.update(unit=unit, system=UCUM, code=unit)
        resource["valueQuantity"] = quantity
    resource.update(extra)
    return resource


def bundle(resources: list[dict[str, Any]], kind: str = "collection", urn: bool = False) -> dict:
    entries = []
    for resource in resources:
        entry: dict[str, Any] = {"resource": resource}
        if urn:
            entry["fullUrl"] = f"urn:uuid:{resource['id']}"
            entry["request"] = {"method": "POST", "url": resource["resourceType"]}
        else:
            entry["fullUrl"] = (
                f"http://example.org/fhir/{resource['resourceType']}/{resource['id']}"
            )
        if kind == "searchset":
            entry["search"] = {"mode": "match"}
        entries.append(entry)
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def write_json(path: Path, document: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def write_ndjson(path: Path, resources: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in resources), encoding="utf-8")
    return path


@pytest.fixture
def fhir() -> SimpleNamespace:
    """Builders for FHIR resources, bundles and files (tests cannot import conftest)."""
    return SimpleNamespace(
        patient=patient,
        observation=observation,
        bundle=bundle,
        write_json=write_json,
        write_ndjson=write_ndjson,
    )


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three synthetic patients (seed 7), written once for the whole session."""
    from workstation.records.synth import write_bundles

    out = tmp_path_factory.mktemp("synth")
    write_bundles(out, 3, seed=7)
    return out
