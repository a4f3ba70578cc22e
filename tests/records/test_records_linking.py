"""Records patients linked to indexed imaging by PatientID and by Study Instance UID."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workstation.records import LinkRule, RecordsStore, import_paths
from workstation.store import open_database


def synthetic_patient(synth_dir: Path) -> tuple[dict, list[dict]]:
    path = sorted(synth_dir.glob("*.json"))[0]
    entries = [e["resource"] for e in json.loads(path.read_text())["entry"]]
    patient = next(r for r in entries if r["resourceType"] == "Patient")
    return patient, entries


def identifier(patient: dict, type_code: str) -> str:
    return next(
        i["value"]
        for i in patient["identifier"]
        if i.get("type", {}).get("coding", [{}])[0].get("code") == type_code
    )


def index_imaging(store: Path, patients: list[str], studies: list[tuple[str, str]]) -> None:
    """Rows in the DICOM index's tables, as an index run would leave them."""
    pytest.importorskip("workstation.dicom.index_schema")
    db = open_database(store, "dicom")
    with db.transaction() as conn:
        conn.executemany(
            "INSERT INTO dicom_patients(patient_id) VALUES (?)", [(p,) for p in patients]
        )
        conn.executemany(
            "INSERT INTO dicom_studies(study_uid, patient_id, study_date, description) "
            "VALUES (?, ?, '20240101', 'CT ABDOMEN')",
            studies,
        )
    db.close()


def test_no_dicom_index_means_no_links_not_an_error(store: Path, synth_dir: Path) -> None:
    import_paths(store, [synth_dir])
    with RecordsStore(store) as records:
        assert all(p["imaging_patient_ids"] == [] for p in records.patients())
        patient_id = records.patients()[0]["patient_id"]
        assert records.record(patient_id)["linked_imaging"] == []


def test_mrn_links_to_dicom_patient_id_and_other_identifiers_do_not(
    store: Path, synth_dir: Path
) -> None:
    patient, _ = synthetic_patient(synth_dir)
    mrn, ssn = identifier(patient, "MR"), identifier(patient, "SS")
    index_imaging(store, [mrn, ssn, "UNRELATED"], [("1.2.3.4", mrn), ("1.2.3.5", ssn)])
    import_paths(store, [synth_dir])
    with RecordsStore(store) as records:
        links = {p["patient_id"]: p["imaging_patient_ids"] for p in records.patients()}
        assert links[patient["id"]] == [mrn]
        linked = records.record(mrn)["linked_imaging"]
        assert [(s["study_uid"], s["linked_by"]) for s in linked] == [("1.2.3.4", ["patient-id"])]
    # which identifiers count is configurable: by type code, or by system
    with RecordsStore(store, LinkRule(types=("SS",))) as records:
        assert {p["patient_id"]: p["imaging_patient_ids"] for p in records.patients()}[
            patient["id"]
        ] == [ssn]
    with RecordsStore(
        store, LinkRule(types=(), systems=("http://hl7.org/fhir/sid/us-ssn",))
    ) as records:
        assert [s["study_uid"] for s in records.record(patient["id"])["linked_imaging"]] == [
            "1.2.3.5"
        ]


def test_imaging_study_links_by_study_instance_uid(store: Path, synth_dir: Path) -> None:
    bundles = [json.loads(p.read_text()) for p in sorted(synth_dir.glob("*.json"))]
    studies = [
        (e["resource"], b)
        for b in bundles
        for e in b["entry"]
        if e["resource"]["resourceType"] == "ImagingStudy"
    ]
    assert studies, "seed 7 gives at least one patient with imaging"
    study, owner_bundle = studies[0]
    uid = study["identifier"][0]["value"].removeprefix("urn:oid:")
    owner = next(
        e["resource"] for e in owner_bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    # indexed under a PatientID the records do not know: only the UID can link it
    index_imaging(store, ["SOMEONE-ELSE"], [(uid, "SOMEONE-ELSE")])
    import_paths(store, [synth_dir])
    with RecordsStore(store) as records:
        record = records.record(owner["id"])
        markers = {s["study_uid"]: s["indexed"] for s in record["imaging_studies"]}
        assert markers[uid] is True
        assert [(s["study_uid"], s["linked_by"]) for s in record["linked_imaging"]] == [
            (uid, ["imaging-study"])
        ]
        timeline = records.timeline(owner["id"])
        assert any(
            m.study_uid == uid and m.indexed and m.time is not None for m in timeline.studies
        )
