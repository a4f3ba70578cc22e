"""Import of FHIR bundles and NDJSON: idempotence, updates, references, broken resources."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

from workstation.records import RecordsStore, import_paths
from workstation.records import importer as importer_module


def table_snapshot(store: Path) -> dict[str, list[tuple]]:
    """Every records table's rows (minus import timestamps), to prove nothing changed."""
    conn = sqlite3.connect(store / "workstation.sqlite")
    tables = [
        "records_resources",
        "records_patients",
        "records_identifiers",
        "records_observations",
        "records_events",
        "records_studies",
    ]
    snapshot = {}
    for table in tables:
        columns = [
            c[1] for c in conn.execute(f"PRAGMA table_info({table})") if c[1] != "imported_at"
        ]
        snapshot[table] = sorted(
            conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall(), key=repr
        )
    conn.close()
    return snapshot


def test_synthea_shaped_bundles_import_every_kept_resource(
    fhir: SimpleNamespace, store: Path, synth_dir: Path
) -> None:
    summary = import_paths(store, [synth_dir])
    assert summary.ok, [p for f in summary.files for p in f.problems]
    bundles = [json.loads(p.read_text()) for p in sorted(synth_dir.glob("*.json"))]
    kept = [
        e["resource"]
        for b in bundles
        for e in b["entry"]
        if e["resource"]["resourceType"] not in ("Claim", "Organization", "Practitioner")
    ]
    assert summary.total("added") == len(kept)
    assert sum(f.ignored["Claim"] for f in summary.files) == sum(
        1 for b in bundles for e in b["entry"] if e["resource"]["resourceType"] == "Claim"
    )
    assert [str(synth_dir / "outcomes.tsv")] == summary.skipped
    with RecordsStore(store) as records:
        assert len(records.patients()) == 3
        first = bundles[0]["entry"]
        patient_resource = next(
            e["resource"] for e in first if e["resource"]["resourceType"] == "Patient"
        )
        timeline = records.timeline(patient_resource["id"])
        # the blood pressure panel's components become their own series
        systolic = timeline.observations["8480-6"]
        assert systolic.unit == "mm[Hg]" and systolic.panel_code == "85354-9"
        assert systolic.times.size == sum(
            1
            for e in first
            if e["resource"]["resourceType"] == "Observation"
            and e["resource"]["code"]["coding"][0]["code"] == "85354-9"
        )


def test_reimport_adds_nothing_and_changed_resources_are_updated(
    fhir: SimpleNamespace, store: Path, tmp_path: Path
) -> None:
    path = fhir.write_json(
        tmp_path / "b.json",
        fhir.bundle(
            [fhir.patient(), fhir.observation("o1", value=1.1), fhir.observation("o2", value=1.3)]
        ),
    )
    first = import_paths(store, [path])
    assert (first.total("added"), first.total("failed")) == (3, 0)
    before = table_snapshot(store)
    again = import_paths(store, [path])
    assert (again.total("added"), again.total("updated"), again.total("unchanged")) == (0, 0, 3)
    assert table_snapshot(store) == before

    fhir.write_json(
        path,
        fhir.bundle(
            [fhir.patient(), fhir.observation("o1", value=2.5), fhir.observation("o2", value=1.3)]
        ),
    )
    changed = import_paths(store, [path])
    assert (changed.total("added"), changed.total("updated"), changed.total("unchanged")) == (
        0,
        1,
        2,
    )
    with RecordsStore(store) as records:
        series = records.timeline("p1").observations["2160-0"]
        assert sorted(series.values.tolist()) == [1.3, 2.5]


def test_identity_by_identifier_when_a_resource_has_no_id(
    fhir: SimpleNamespace, store: Path, tmp_path: Path
) -> None:
    no_id = fhir.observation("x", value=4.0)
    del no_id["id"]
    no_id["identifier"] = [{"system": "urn:lab", "value": "accession-9"}]
    path = fhir.write_json(
        tmp_path / "b.json",
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": fhir.patient()}, {"resource": no_id}],
        },
    )
    assert import_paths(store, [path]).total("added") == 2
    assert import_paths(store, [path]).total("unchanged") == 2


def test_broken_resources_are_reported_by_entry_id_and_reason_and_the_rest_imports(
    fhir: SimpleNamespace, store: Path, tmp_path: Path
) -> None:
    bad_date = fhir.observation("bad-date", when="2020-13-45")
    no_unit = fhir.observation("no-unit", value=7.2, unit=None)
    wrong_type = {**fhir.observation("wrong"), "resourceType": "Observaton"}
    path = fhir.write_json(
        tmp_path / "broken.json",
        fhir.bundle([fhir.patient(), bad_date, fhir.observation("good"), no_unit, wrong_type]),
    )
    summary = import_paths(store, [path])
    result = summary.files[0]
    assert (result.added, result.failed) == (2, 3)
    problems = {p.location: p for p in result.problems}
    assert set(problems) == {"entry 1", "entry 3", "entry 4"}
    assert problems["entry 1"].resource == "Observation/bad-date"
    assert (
        "effectiveDateTime" in problems["entry 1"].reason
        and "2020-13-45" in problems["entry 1"].reason
    )
    assert problems["entry 3"].resource == "Observation/no-unit"
    assert "7.2 has no unit" in problems["entry 3"].reason
    assert "'Observaton' is not a FHIR R4 resource type" in problems["entry 4"].reason
    assert all(p.source == str(path.resolve()) for p in result.problems)
    with RecordsStore(store) as records:
        assert records.timeline("p1").observations["2160-0"].times.size == 1
        stored = records.problems(str(path.resolve()))
        assert [p["location"] for p in stored] == ["entry 1", "entry 3", "entry 4"]


def test_urn_uuid_reference_to_nothing_is_reported(
    fhir: SimpleNamespace, store: Path, tmp_path: Path
) -> None:
    orphan = fhir.observation("orphan", subject="urn:uuid:00000000-0000-0000-0000-00000000dead")
    path = fhir.write_json(
        tmp_path / "t.json",
        fhir.bundle(
            [fhir.patient(), fhir.observation("ok", subject="urn:uuid:p1"), orphan],
            kind="transaction",
            urn=True,
        ),
    )
    result = import_paths(store, [path]).files[0]
    assert (result.added, result.failed) == (2, 1)
    [problem] = result.problems
    assert problem.location == "entry 2" and problem.resource == "Observation/orphan"
    assert "urn:uuid:00000000-0000-0000-0000-00000000dead" in problem.reason
    assert "points to nothing" in problem.reason


def test_searchset_bundle_with_absolute_and_relative_references(
    fhir: SimpleNamespace, store: Path, tmp_path: Path
) -> None:
    resources = [
        fhir.patient(),
        fhir.observation("o1", subject="http://example.org/fhir/Patient/p1"),
        fhir.observation("o2", subject="Patient/p1/_history/3", when="2021-05"),
        {
            "resourceType": "OperationOutcome",
            "id": "oo",
            "issue": [{"severity": "information", "code": "informational"}],
        },
    ]
    document = fhir.bundle(resources, kind="searchset")
    document["entry"][-1]["search"] = {"mode": "outcome"}
    summary = import_paths(store, [fhir.write_json(tmp_path / "s.json", document)])
    assert summary.ok
    assert summary.files[0].ignored["OperationOutcome"] == 1
    with RecordsStore(store) as records:
        series = records.timeline("MRN-1").observations["2160-0"]
        assert series.times.size == 2
        # a partial date sorts at the start of the month it names
        assert str(series.datetimes()[1]) == "2021-05-01T00:00:00.000"


def test_clinical_resource_types_become_spans_and_events(
    fhir: SimpleNamespace, store: Path, tmp_path: Path
) -> None:
    subject = {"reference": "Patient/p1"}
    code = {"coding": [{"system": "http://snomed.info/sct", "code": "123", "display": "Thing"}]}
    resources = [
        fhir.patient(),
        {
            "resourceType": "Encounter",
            "id": "e1",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": subject,
            "period": {"start": "2020-01-01T09:00:00Z", "end": "2020-01-01T10:00:00Z"},
        },
        {
            "resourceType": "Condition",
            "id": "c1",
            "code": code,
            "subject": subject,
            "encounter": {"reference": "Encounter/e1"},
            "onsetDateTime": "2020-01-01",
            "abatementDateTime": "2020-06-01",
        },
        {
            "resourceType": "MedicationStatement",
            "id": "ms1",
            "status": "active",
            "medicationCodeableConcept": code,
            "subject": subject,
            "effectivePeriod": {"start": "2020-02-01"},
        },
        {
            "resourceType": "MedicationRequest",
            "id": "mr1",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": code,
            "subject": subject,
            "authoredOn": "2020-03-01",
        },
        {
            "resourceType": "Procedure",
            "id": "pr1",
            "status": "completed",
            "code": code,
            "subject": subject,
            "performedDateTime": "2020-04-01T08:00:00+02:00",
        },
        {
            "resourceType": "DiagnosticReport",
            "id": "dr1",
            "status": "final",
            "code": code,
            "subject": subject,
            "effectiveDateTime": "2020-04-02",
            "result": [{"reference": "Observation/s1"}],
        },
        {
            "resourceType": "AllergyIntolerance",
            "id": "a1",
            "code": code,
            "patient": subject,
            "recordedDate": "2019-12-01",
        },
        fhir.observation("s1", value=None, valueString="trace protein"),
        fhir.observation(
            "cc1",
            code="72166-2",
            value=None,
            valueCodeableConcept={
                "coding": [
                    {
                        "system": "http://snomed.info/sct",
                        "code": "266919005",
                        "display": "Never smoked tobacco",
                    }
                ]
            },
        ),
    ]
    summary = import_paths(store, [fhir.write_ndjson(tmp_path / "all.ndjson", resources)])
    assert summary.ok, summary.to_dict()
    with RecordsStore(store) as records:
        timeline = records.timeline("p1")
        spans = {(s.kind, s.start_text, s.end_text) for s in timeline.spans}
        assert spans == {
            ("allergy", "2019-12-01", None),
            ("condition", "2020-01-01", "2020-06-01"),
            ("medication", "2020-02-01", None),
            ("medication", "2020-03-01", None),
        }
        events = {e.kind: e for e in timeline.events}
        assert set(events) == {"encounter", "procedure", "report"}
        assert events["procedure"].time == pytest.approx(1585720800.0)  # 06:00Z
        assert events["encounter"].end - events["encounter"].time == 3600
        assert timeline.observations["2160-0"].texts.tolist() == ["trace protein"]
        assert timeline.observations["72166-2"].texts.tolist() == ["Never smoked tobacco"]


def test_ndjson_files_reference_each_other_in_any_order(
    fhir: SimpleNamespace, store: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "export"
    # "A_Observation" sorts before "Patient": observations are imported first
    fhir.write_ndjson(
        folder / "A_Observation.ndjson",
        [fhir.observation(f"o{i}") for i in range(3)]
        + [fhir.observation("lost", subject="Patient/nobody")],
    )
    fhir.write_ndjson(folder / "Patient.ndjson", [fhir.patient()])
    summary = import_paths(store, [folder])
    assert summary.total("added") == 5
    [dangling] = summary.dangling
    assert dangling.resource == "Observation/lost" and dangling.location == "line 4"
    assert "Patient/nobody, which is not in the store" in dangling.reason
    with RecordsStore(store) as records:
        assert records.timeline("p1").observations["2160-0"].times.size == 3


def test_ndjson_bad_lines_are_reported_by_line_number(
    fhir: SimpleNamespace, store: Path, tmp_path: Path
) -> None:
    path = tmp_path / "Observation.ndjson"
    path.write_text(
        json.dumps(fhir.patient())
        + "\n"
        + "{not json\n"
        + "[1, 2]\n"
        + json.dumps({"id": "x"})
        + "\n"
        + json.dumps(fhir.observation("o1"))
        + "\n",
        encoding="utf-8",
    )
    result = import_paths(store, [path]).files[0]
    assert result.added == 2
    reasons = {p.location: p.reason for p in result.problems}
    assert reasons["line 2"].startswith("not JSON")
    assert reasons["line 3"] == "not FHIR: the line is not a JSON object"
    assert reasons["line 4"] == "not a FHIR resource: no resourceType"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("this is not json", "not JSON: Expecting value at line 1 column 1"),
        ('{"hello": "world"}', "not FHIR: the JSON document has no resourceType"),
        (
            '{"resourceType": "Bundle", "type": "bogus"}',
            "Bundle type 'bogus' is not a FHIR bundle type",
        ),
    ],
)
def test_unreadable_files_are_refused_whole_and_nothing_stored_changes(
    fhir: SimpleNamespace, store: Path, tmp_path: Path, content: str, reason: str
) -> None:
    import_paths(
        store,
        [
            fhir.write_json(
                tmp_path / "good.json", fhir.bundle([fhir.patient(), fhir.observation("o1")])
            )
        ],
    )
    before = table_snapshot(store)
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    summary = import_paths(store, [bad])
    assert summary.files[0].error == reason
    assert table_snapshot(store) == before
    with RecordsStore(store) as records:
        assert records.problems(str(bad.resolve()))[0]["reason"] == reason


def test_a_failure_mid_file_leaves_nothing_of_that_file(
    fhir: SimpleNamespace, store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_paths(
        store,
        [
            fhir.write_json(
                tmp_path / "first.json", fhir.bundle([fhir.patient(), fhir.observation("o1")])
            )
        ],
    )
    before = table_snapshot(store)
    real_store = importer_module._store_parsed
    calls = {"n": 0}

    def failing_store(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real_store(*args, **kwargs)

    monkeypatch.setattr(importer_module, "_store_parsed", failing_store)
    second = fhir.write_ndjson(
        tmp_path / "second.ndjson", [fhir.observation(f"n{i}", value=i) for i in range(5)]
    )
    result = import_paths(store, [second]).files[0]
    assert result.error == "No space left on device" and result.added == 0
    assert table_snapshot(store) == before


def test_missing_path_is_reported(fhir: SimpleNamespace, store: Path, tmp_path: Path) -> None:
    summary = import_paths(store, [tmp_path / "nowhere.json"])
    assert summary.files[0].error == "no such file"
