"""`workstation pacs audit`: what left this store, by whom, where to (absolute), and under which
replacement UIDs a de-identified copy arrived, so an entry can be matched at the destination."""

from __future__ import annotations

import getpass
import json

import pytest
from pydicom import dcmread

from workstation.cli import main
from workstation.dicom.net import NodeStore, audit_log

OUR_AE = "WSTEST"


@pytest.fixture
def store_and_series(tmp_path, ct_series):
    from workstation.dicom.index import index_paths

    files = ct_series(tmp_path / "src", 3)
    store = tmp_path / "store"
    index_paths(store, [tmp_path / "src"])
    return store, str(dcmread(files[0]).SeriesInstanceUID)


def _cli(store, *args: str) -> int:
    return main(["--store", str(store), *args])


def test_audit_lists_exports_with_user_and_replacement_uids(store_and_series, tmp_path, capsys):
    store, series = store_and_series
    assert _cli(store, "pacs", "audit") == 0
    assert "nothing has been exported or sent" in capsys.readouterr().out

    out = tmp_path / "anon"
    assert _cli(store, "export", series, str(out), "--format", "dicom", "--deidentify") == 0
    assert _cli(store, "export", series, str(tmp_path / "plain"), "--format", "dicom") == 0
    capsys.readouterr()

    assert _cli(store, "pacs", "audit", "--json") == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["deidentified"] for e in entries] == [True, False]
    anon = entries[0]
    arrived = dcmread(out / "IMG0001.dcm")
    assert anon["deidentified_as"]["studies"] == [str(arrived.StudyInstanceUID)]
    assert anon["deidentified_as"]["series"] == [str(arrived.SeriesInstanceUID)]
    assert anon["what"] == [series] and anon["destination"] == str(out)
    assert anon["user"] == getpass.getuser() and anon["computer"]
    assert entries[1]["deidentified_as"] == {}

    assert _cli(store, "pacs", "audit", "--limit", "1") == 0
    text = capsys.readouterr().out
    assert "export" in text and str(tmp_path / "plain") in text and str(out) not in text
    assert f"series {series}" in text and getpass.getuser() in text

    assert _cli(store, "pacs", "audit", "--limit", "0") == 1
    assert "--limit 0" in capsys.readouterr().err


@pytest.mark.network
def test_a_deidentified_send_records_the_study_uid_it_arrived_under(
    store_and_series, orthanc_factory, capsys
):
    store, series = store_and_series
    server = orthanc_factory({"workstation": (OUR_AE, 104)})
    nodes = NodeStore(store)
    nodes.add("research", server.ae_title, "127.0.0.1", server.dicom_port)
    nodes.close()
    code = _cli(store, "pacs", "send", "research", series, "--deidentify", "--ae-title", OUR_AE)
    assert code == 0
    (study,) = server.rest("/studies")
    arrived_uid = server.rest(f"/studies/{study}")["MainDicomTags"]["StudyInstanceUID"]
    assert f"arrives there as study {arrived_uid}" in capsys.readouterr().out
    entry = audit_log(store)[-1]
    assert json.loads(entry.deidentified_as)["studies"] == [arrived_uid]
    assert entry.user == getpass.getuser()
