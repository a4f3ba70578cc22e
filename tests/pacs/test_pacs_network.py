"""DICOM networking against real peers on 127.0.0.1: Orthanc, dcmtk's storescu, our listener."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from pacs_peers import DCMTK_ENV, free_port
from pydicom import dcmread
from pydicom.uid import (
    BasicTextSRStorage,
    CTImageStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)
from pynetdicom import AE

from workstation.cli import main
from workstation.dicom.net import (
    Listener,
    NodeStore,
    PacsError,
    audit_log,
    find,
    retrieve,
)
from workstation.dicom.net.receive import FILES_DIR, INCOMING_DIR

pytestmark = pytest.mark.network
OUR_AE = "WSTEST"


def _store_with_node(tmp_path: Path, pacs, name: str = "orthanc") -> Path:
    store = tmp_path / "store"
    nodes = NodeStore(store)
    nodes.add(name, pacs.orthanc.ae_title, "127.0.0.1", pacs.orthanc.dicom_port)
    nodes.close()
    return store


def _node(store: Path, name: str = "orthanc"):
    nodes = NodeStore(store)
    try:
        return nodes.get(name)
    finally:
        nodes.close()


def _indexed_sops(store: Path) -> set[str]:
    for module in ("workstation.dicom.headers", "workstation.dicom.stacks"):
        pytest.importorskip(module, reason="the DICOM index's header reader is not there yet")
    from workstation.dicom.index import open_index

    db = open_index(store)
    try:
        return {
            r["sop_instance_uid"] for r in db.query("SELECT sop_instance_uid FROM dicom_instances")
        }
    finally:
        db.close()


def _stored_files(store: Path) -> list[Path]:
    return sorted((store / FILES_DIR).glob("*/*/*.dcm"))


# -- echo and find ------------------------------------------------------------------------------
def test_echo_reaches_orthanc_and_names_an_unreachable_node(tmp_path, pacs, capsys):
    store = _store_with_node(tmp_path, pacs)
    assert main(["--store", str(store), "pacs", "echo", "orthanc", "--ae-title", OUR_AE]) == 0
    assert "C-ECHO ok" in capsys.readouterr().out

    nodes = NodeStore(store)

    nodes.add("nobody", "NOBODY", "127.0.0.1", free_port())
    nodes.close()
    assert main(["--store", str(store), "pacs", "echo", "nobody", "--ae-title", OUR_AE]) == 1
    assert "'nobody'" in capsys.readouterr().err


def test_find_at_patient_study_and_series_level(tmp_path, pacs, capsys):
    store = _store_with_node(tmp_path, pacs)
    node = _node(store)
    patients = find(node, "patient", patient_id="MRN-4471923", ae_title=OUR_AE)
    assert [p["PatientName"] for p in patients] == ["Doe^Jane^Quinn"]

    studies = find(node, "study", study_date="20240101-20241231", ae_title=OUR_AE)
    assert [s["StudyInstanceUID"] for s in studies] == [pacs.study_uid]
    assert find(node, "study", patient_name="Roe*", ae_title=OUR_AE)[0]["StudyInstanceUID"] == (
        pacs.other_study_uid
    )

    code = main(
        [
            "--store",
            str(store),
            "pacs",
            "find",
            "orthanc",
            "--level",
            "series",
            "--study",
            pacs.study_uid,
            "--json",
            "--ae-title",
            OUR_AE,
        ]
    )
    assert code == 0
    series = json.loads(capsys.readouterr().out)
    found = {s["SeriesInstanceUID"]: int(s["NumberOfSeriesRelatedInstances"]) for s in series}
    assert found == pacs.counts
    # series level without a study: found through the matching studies
    by_patient = find(node, "series", patient_id="MRN-5550001", modality="CT", ae_title=OUR_AE)
    assert len(by_patient) == 1 and by_patient[0]["Modality"] == "CT"


# -- retrieve -----------------------------------------------------------------------------------
def test_get_series_stores_and_indexes_each_instance_with_progress(
    tmp_path, pacs, retrieval_backend
):
    store = _store_with_node(tmp_path, pacs)
    series_uid = pacs.series_uids[0]
    seen: list[tuple[int, int]] = []
    uids: list[str] = []
    arrived = []
    report = retrieve(
        store,
        _node(store),
        pacs.study_uid,
        series_uid,
        ae_title=OUR_AE,
        progress=lambda done, total, uid: (seen.append((done, total)), uids.append(uid)),
        on_received=arrived.append,
        backend=retrieval_backend,
    )
    assert report.complete, report.to_dict()
    assert seen == [(i, 6) for i in range(1, 7)]
    assert sorted(uids) == sorted(report.expected)
    assert all(r.indexed for r in arrived) and len(arrived) == 6
    assert {r.calling_ae for r in arrived} == {pacs.orthanc.ae_title}
    files = _stored_files(store)
    assert len(files) == 6
    assert {dcmread(f).SeriesInstanceUID for f in files} == {series_uid}
    assert _indexed_sops(store) == set(report.expected)


def test_cli_get_whole_study(tmp_path, pacs, capsys, retrieval_backend):
    store = _store_with_node(tmp_path, pacs)
    code = main(
        [
            "--store",
            str(store),
            "pacs",
            "get",
            "orthanc",
            "--study",
            pacs.study_uid,
            "--ae-title",
            OUR_AE,
            "--backend",
            retrieval_backend,
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert "10 of 10 instances received and indexed" in capsys.readouterr().out
    assert len(_indexed_sops(store)) == 10


def test_move_to_our_own_listener(tmp_path, pacs):
    store = _store_with_node(tmp_path, pacs)
    report = retrieve(
        store,
        _node(store),
        pacs.study_uid,
        pacs.series_uids[1],
        move=True,
        ae_title=OUR_AE,
        port=pacs.listener_port,
        listen_host="127.0.0.1",
    )
    assert report.complete, report.to_dict()
    assert len(report.received) == 4
    assert _indexed_sops(store) == set(report.expected)


def test_orthanc_killed_mid_retrieval_keeps_complete_objects_and_reports_the_rest(
    tmp_path, orthanc_factory, ct_series
):
    """pynetdicom answers each object before Orthanc sends the next, so killing Orthanc from
    the progress callback stops it there (getscu runs ahead: see test_pacs_retrieve_backends)."""
    server = orthanc_factory({"workstation": (OUR_AE, 104)})
    paths = ct_series(tmp_path / "big", 12, size=128)
    server.upload(paths)
    store = tmp_path / "store"
    nodes = NodeStore(store)
    nodes.add("dying", server.ae_title, "127.0.0.1", server.dicom_port)
    node = nodes.get("dying")
    nodes.close()
    study = str(dcmread(paths[0]).StudyInstanceUID)

    def kill_after_three(done: int, total: int, uid: str) -> None:
        if done == 3:
            server.kill()

    report = retrieve(
        store, node, study, ae_title=OUR_AE, progress=kill_after_three, backend="pynetdicom"
    )
    assert not report.complete
    assert report.problem
    assert 3 <= len(report.received) < 12
    assert sorted(report.missing) == sorted(set(report.expected) - set(report.received))
    assert len(report.expected) == 12
    files = _stored_files(store)
    assert {f.stem for f in files} == set(report.received)
    for f in files:  # every kept object is whole
        assert dcmread(f).pixel_array.shape == (128, 128)
    assert not list((store / FILES_DIR / INCOMING_DIR).glob("*"))
    assert _indexed_sops(store) == set(report.received)


def test_get_from_a_node_that_refuses_us(tmp_path, pacs, retrieval_backend):
    store = _store_with_node(tmp_path, pacs)
    # Orthanc only serves AEs it knows; this one is not in its DicomModalities
    with pytest.raises(PacsError, match="orthanc"):
        retrieve(
            store, _node(store), pacs.study_uid, ae_title="STRANGER", backend=retrieval_backend
        )
    assert not _stored_files(store)
    assert not list((store / FILES_DIR / INCOMING_DIR).glob("*"))


# -- listener -----------------------------------------------------------------------------------
def _storescu(
    port: int, calling: str, called: str, files: list[Path]
) -> subprocess.CompletedProcess:
    from workstation.dicom.net.dcmtk_get import dcmtk_tool

    binary = dcmtk_tool("storescu")  # dcmtk's, not pynetdicom's app of the same name
    if binary is None:
        pytest.skip("dcmtk's storescu is not installed (apt-get install dcmtk)")
    return subprocess.run(
        [binary, "-aet", calling, "-aec", called, "127.0.0.1", str(port), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        env=DCMTK_ENV,
    )


@pytest.fixture
def listening(tmp_path):

    store = tmp_path / "store"
    nodes = NodeStore(store)
    nodes.add("modality", "STORESCU", "127.0.0.1", 104)
    nodes.close()
    received = []
    listener = Listener(store, OUR_AE, free_port(), host="127.0.0.1", on_received=received.append)
    listener.start()
    yield store, listener, received
    listener.stop()


def test_listener_receives_from_storescu_and_indexes_as_it_arrives(listening, tmp_path, ct_series):
    store, listener, received = listening
    paths = ct_series(tmp_path / "send", 5)
    result = _storescu(listener.port, "STORESCU", OUR_AE, paths)
    assert result.returncode == 0, result.stderr
    listener.flush()
    sops = {str(dcmread(p).SOPInstanceUID) for p in paths}
    assert {r.sop_instance_uid for r in received} == sops
    assert all(r.calling_ae == "STORESCU" for r in received)
    assert _indexed_sops(store) == sops
    assert all(r.indexed for r in received)


def test_listener_refuses_an_unregistered_calling_ae(listening, tmp_path, ct_series, caplog):
    store, listener, _received = listening
    result = _storescu(listener.port, "INTRUDER", OUR_AE, ct_series(tmp_path / "x", 1))
    assert result.returncode != 0
    assert (
        "INTRUDER" in listener.refused[0][0] and "not a registered node" in listener.refused[0][1]
    )
    assert "not a registered node" in caplog.text
    assert not _stored_files(store)


def test_listener_refuses_a_wrong_called_ae(listening, tmp_path, ct_series):
    store, listener, _received = listening
    result = _storescu(listener.port, "STORESCU", "SOMEONEELSE", ct_series(tmp_path / "x", 1))
    assert result.returncode != 0
    assert "called AE 'SOMEONEELSE' is not ours" in listener.refused[0][1]
    assert not _stored_files(store)


def test_listener_accepts_any_ae_when_told(tmp_path, ct_series):

    store = tmp_path / "store"
    with Listener(store, OUR_AE, free_port(), host="127.0.0.1", accept_any=True) as listener:
        result = _storescu(listener.port, "ANYONE", OUR_AE, ct_series(tmp_path / "x", 2))
        assert result.returncode == 0, result.stderr
        listener.flush()
    assert len(_stored_files(store)) == 2


def test_listener_rejects_a_malformed_dataset_logs_it_and_goes_on(
    listening, tmp_path, ct_series, caplog, monkeypatch
):
    import pynetdicom._config

    monkeypatch.setattr(pynetdicom._config, "STORE_SEND_CHUNKED_DATASET", True)  # bytes as-is
    store, listener, received = listening
    good = ct_series(tmp_path / "good", 1)[0]
    # A file whose data set is cut off in the middle of the pixel data
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(good.read_bytes()[:-700])
    # ... one whose pixel data is whole but too short for its Rows x Columns
    short = dcmread(good)
    short.PixelData = short.PixelData[:100]
    short.SOPInstanceUID = short.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    short_path = tmp_path / "short.dcm"
    short.save_as(short_path)
    # ... and one without a Series Instance UID
    missing = dcmread(good)
    del missing.SeriesInstanceUID
    missing.SOPInstanceUID = missing.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    missing_path = tmp_path / "missing.dcm"
    missing.save_as(missing_path)

    ae = AE(ae_title="STORESCU")
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", listener.port, ae_title=OUR_AE)
    assert assoc.is_established
    statuses = [
        int(assoc.send_c_store(path).Status) for path in (broken, short_path, missing_path, good)
    ]
    assoc.release()
    listener.flush()
    assert statuses == [0xC000, 0xC000, 0xA900, 0x0000]
    assert "data set is truncated" in caplog.text
    assert "the header's image size needs" in caplog.text
    assert "SeriesInstanceUID is missing" in caplog.text
    assert [f.stem for f in _stored_files(store)] == [str(dcmread(good).SOPInstanceUID)]
    assert len(received) == 1


@pytest.mark.parametrize("chunked", [True, False], ids=["walked", "decoded by pydicom"])
def test_listener_rejects_an_image_without_pixels_or_size_but_keeps_other_objects(
    listening, tmp_path, ct_series, caplog, monkeypatch, chunked
):
    import pynetdicom._config

    monkeypatch.setattr(pynetdicom._config, "STORE_SEND_CHUNKED_DATASET", chunked)
    store, listener, received = listening
    good = ct_series(tmp_path / "good", 1)[0]

    def variant(name: str, change) -> Path:
        ds = dcmread(good)
        change(ds)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        path = tmp_path / f"{name}.dcm"
        ds.save_as(path)
        return path

    no_pixels = variant("nopixels", lambda ds: delattr(ds, "PixelData"))

    def zero_rows(ds) -> None:
        ds.Rows = 0
        ds.PixelData = b""

    empty = variant("zerorows", zero_rows)

    def as_text_report(ds) -> None:  # an object that is not an image: no pixel data is right
        del ds.PixelData
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = BasicTextSRStorage

    report = variant("report", as_text_report)
    ae = AE(ae_title="STORESCU")
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    ae.add_requested_context(BasicTextSRStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", listener.port, ae_title=OUR_AE)
    assert assoc.is_established
    statuses = [int(assoc.send_c_store(path).Status) for path in (no_pixels, empty, report, good)]
    assoc.release()
    listener.flush()
    assert statuses == [0xC000, 0xC000, 0x0000, 0x0000]
    assert "no pixel data in a CT Image Storage object: not an image" in caplog.text
    assert "empty image: 0 rows x" in caplog.text
    stored = {f.stem for f in _stored_files(store)}
    assert stored == {str(dcmread(good).SOPInstanceUID), str(dcmread(report).SOPInstanceUID)}
    assert len(received) == 2


# -- send ---------------------------------------------------------------------------------------
def test_send_deidentified_series_leaves_no_identifying_value_on_the_peer(
    tmp_path, orthanc_factory, ct_series
):
    from workstation.dicom.index import index_paths

    server = orthanc_factory({"workstation": (OUR_AE, 104)})
    source = ct_series(tmp_path / "src", 3)
    store = tmp_path / "store"
    index_paths(store, [tmp_path / "src"])
    nodes = NodeStore(store)
    nodes.add("research", server.ae_title, "127.0.0.1", server.dicom_port)
    nodes.close()
    series_uid = str(dcmread(source[0]).SeriesInstanceUID)
    code = main(
        [
            "--store",
            str(store),
            "pacs",
            "send",
            "research",
            series_uid,
            "--deidentify",
            "--ae-title",
            OUR_AE,
        ]
    )
    assert code == 0
    instances = server.rest("/instances")
    assert len(instances) == 3
    from pacs_peers import identifying_values

    secrets = identifying_values(dcmread(source[0]))
    for instance in instances:
        blob = server.rest(f"/instances/{instance}/file")
        leaked = [value for value in secrets if value.encode() in blob]
        assert not leaked
    entry = audit_log(store)[-1]
    assert (entry.action, entry.instances, entry.deidentified, entry.outcome) == (
        "send",
        3,
        True,
        "ok",
    )
    assert "research" in entry.destination and series_uid in entry.what
