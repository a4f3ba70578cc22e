"""`pacs find`: study keys at patient level list the patients who have a matching study, and
malformed keys are refused before anything is sent. Against a real Orthanc (two patients:
Doe^Jane^Quinn with a CT study of 20240315, Roe^Richard with a CT study of 20230101)."""

from __future__ import annotations

import json
import warnings

import pytest
from pacs_peers import free_port

from workstation.cli import main
from workstation.dicom.net import NodeStore, PacsError, find
from workstation.dicom.net.query_keys import date_range

pytestmark = pytest.mark.network
OUR_AE = "WSTEST"


@pytest.fixture
def store(tmp_path, pacs):
    store = tmp_path / "store"
    nodes = NodeStore(store)
    nodes.add("pacs", pacs.orthanc.ae_title, "127.0.0.1", pacs.orthanc.dicom_port)
    nodes.add("down", "DOWN", "127.0.0.1", free_port())  # nothing listens there
    nodes.close()
    return store


def _find(store, capsys, *args: str) -> tuple[int, str, str]:
    code = main(["--store", str(store), "pacs", "find", *args, "--ae-title", OUR_AE])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_patient_level_with_study_keys_lists_patients_with_a_matching_study(store, capsys):
    code, out, _ = _find(store, capsys, "pacs", "--level", "patient", "--study-date", "20230101")
    assert code == 0
    assert "Roe^Richard" in out and "Doe^Jane" not in out

    code, out, _ = _find(
        store, capsys, "pacs", "--level", "patient", "--study-date", "20240101-", "--json"
    )
    rows = json.loads(out)
    assert [(r["PatientID"], r["PatientName"]) for r in rows] == [("MRN-4471923", "Doe^Jane^Quinn")]
    assert rows[0]["NumberOfPatientRelatedStudies"] == "1"
    assert rows[0]["PatientBirthDate"] == "19610417"

    code, out, err = _find(store, capsys, "pacs", "--level", "patient", "--modality", "MR")
    assert code == 0 and "Roe^Richard" not in out and "Doe^Jane" not in out
    assert "0 patient match(es)" in err
    both = find(_node(store), "patient", modality="ct", ae_title=OUR_AE)
    assert sorted(r["PatientID"] for r in both) == ["MRN-4471923", "MRN-5550001"]


@pytest.mark.parametrize("value", ["2024-03-15", "20241301", "2024031", "20240316-20240315", "-"])
def test_a_malformed_study_date_is_refused_before_any_network_call(store, capsys, value):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no pydicom "Invalid value for VR DA" either
        code, out, err = _find(store, capsys, "down", "--study-date", value)
    assert code == 1 and out == ""
    assert err.startswith(f"workstation: error: --study-date {value!r}")
    assert "could not be reached" not in err  # refused here, not by the (absent) node


def test_date_forms_a_radiologist_types_are_accepted():
    for value in ("20240315", "20240101-20241231", "-20240315", "20240315-"):
        assert date_range(value) == value
    with pytest.raises(ValueError, match="is not YYYYMMDD, YYYYMMDD-YYYYMMDD, -YYYYMMDD"):
        date_range("15.03.2024")
    with pytest.raises(ValueError, match="20240230 is not a calendar date"):
        date_range("20240230")


def test_other_malformed_keys_are_named(store, capsys):
    code, _, err = _find(store, capsys, "down", "--patient-name", "Doe\\Roe")
    assert code == 1 and "--patient-name 'Doe\\\\Roe' contains a backslash" in err
    code, _, err = _find(store, capsys, "down", "--modality", "C-T")
    assert code == 1 and "--modality 'C-T' is not a modality code" in err
    # the API refuses the same, without a network call
    with pytest.raises(PacsError, match="study date '2024-03-15' is not") as caught:
        find(_node(store, "down"), "study", study_date="2024-03-15")
    assert caught.value.kind == "invalid"


def _node(store, name: str = "pacs"):
    nodes = NodeStore(store)
    try:
        return nodes.get(name)
    finally:
        nodes.close()
