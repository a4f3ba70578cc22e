"""The timeline API the GUI panel and the records RNN read: arrays, filters, spans, lookup."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from workstation.records import PatientNotFound, RecordsStore, import_paths


@pytest.fixture
def filled_store(fhir: SimpleNamespace, store: Path, tmp_path: Path) -> Path:
    code = {"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}]}
    resources = [
        fhir.patient("p1", mrn="SHARED"),
        fhir.patient(
            "p2",
            identifier=[
                {"type": {"coding": [{"code": "MR"}]}, "value": "MRN-2"},
                {"system": "urn:x", "value": "SHARED"},
            ],
        ),
        fhir.observation("o3", value=3.0, when="2022-01-01T00:00:00Z"),
        fhir.observation("o1", value=1.0, when="2020-01-01T00:00:00Z"),
        fhir.observation("o2", value=2.0, when="2021-01-01T00:00:00+01:00"),
        fhir.observation("g1", code="2339-0", value=90.0, unit="mg/dL", when="2021-06-01"),
        {
            "resourceType": "Condition",
            "id": "old",
            "code": code,
            "subject": {"reference": "Patient/p1"},
            "onsetDateTime": "2010-01-01",
            "abatementDateTime": "2011-01-01",
        },
        {
            "resourceType": "Condition",
            "id": "ongoing",
            "code": code,
            "subject": {"reference": "Patient/p1"},
            "onsetDateTime": "2012-01-01",
        },
    ]
    import_paths(store, [fhir.write_ndjson(tmp_path / "r.ndjson", resources)])
    return store


def test_series_are_time_ordered_float_arrays(filled_store: Path) -> None:
    with RecordsStore(filled_store) as records:
        series = records.timeline("p1").observations["2160-0"]
    assert series.times.dtype == np.float64 and series.values.dtype == np.float64
    assert series.values.tolist() == [1.0, 2.0, 3.0]
    assert np.all(np.diff(series.times) > 0)
    assert str(series.datetimes()[1]) == "2020-12-31T23:00:00.000"  # +01:00 read as UTC
    assert series.unit == "mg/dL" and not series.mixed_units and series.numeric


def test_code_and_since_filters(filled_store: Path) -> None:
    with RecordsStore(filled_store) as records:
        only = records.timeline("p1", codes=["http://loinc.org|2339-0"])
        assert list(only.observations) == ["2339-0"]
        assert records.timeline("p1", codes=["urn:other|2339-0"]).observations == {}
        recent = records.timeline("p1", since="2021-03")
        assert recent.observations["2160-0"].values.tolist() == [3.0]
        # a condition that ended before `since` is left out; one still running is kept
        assert [s.end for s in recent.spans] == [None]
        assert len(records.timeline("p1").spans) == 2


def test_patient_lookup_prefers_id_then_mrn_and_refuses_ambiguity(filled_store: Path) -> None:
    with RecordsStore(filled_store) as records:
        assert records.find_patient("p2") == "p2"
        assert records.find_patient("MRN-2") == "p2"
        # "SHARED" is p1's MRN and merely another identifier of p2: the MRN wins
        assert records.find_patient("SHARED") == "p1"
        with pytest.raises(PatientNotFound, match="no records patient"):
            records.timeline("nobody")


def test_analyses_load_a_patients_timeline_through_the_plugin_inputs(filled_store: Path) -> None:
    from workstation.records import load_patient_records

    timeline = load_patient_records(filled_store, "MRN-2")
    assert timeline.patient_id == "p2" and timeline.demographics["birth_date"] == "1960-02-03"
    timeline = load_patient_records(filled_store, "p1")
    assert timeline.observations["2160-0"].values.tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(PatientNotFound):
        load_patient_records(filled_store, "nobody")
