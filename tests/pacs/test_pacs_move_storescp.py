"""C-MOVE received through dcmtk's storescp (dcmtk_move): the same guarantees as the listener.

Against a real Orthanc: a whole move through storescp (progress per instance, stored and
indexed, nothing left behind); the fallback to a running listener when storescp cannot have
the port; the pynetdicom backend. Against a peer that dies while sending an object to the move
destination (this file, run as a program, is that peer): whole objects kept and indexed, the
rest named. And what storescp's log may not make us do: take a file outside its folder, or an
object from a caller that is not a registered node.

    python test_pacs_move_storescp.py FOLDER PORT AE_TITLE DESTINATION_PORT KILL_AT
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pacs_peers import free_port
from pydicom import dcmread

from workstation.dicom.net import Listener, NodeStore, retrieve

pytestmark = pytest.mark.network
OUR_AE = "WSTEST"
PEER_AE = "DYINGMOVE"


@pytest.fixture
def storescp_calls(monkeypatch):
    """Which way each C-MOVE was received: a list with one entry per storescp run."""
    from workstation.dicom.net import dcmtk_move

    if not dcmtk_move.available():
        pytest.skip("dcmtk's storescp is not installed (apt-get install dcmtk)")
    calls: list[str] = []
    real = dcmtk_move.move_into_store

    def recording(*args, **kwargs):
        try:
            result = real(*args, **kwargs)
        except dcmtk_move.PortBusy:
            calls.append("port busy")
            raise
        calls.append("storescp")
        return result

    monkeypatch.setattr(dcmtk_move, "move_into_store", recording)
    return calls


def _store_with(store: Path, name: str, ae_title: str, port: int):
    nodes = NodeStore(store)
    try:
        return nodes.add(name, ae_title, "127.0.0.1", port)
    finally:
        nodes.close()


def _indexed(store: Path) -> set[str]:
    from workstation.dicom.index import open_index

    db = open_index(store)
    try:
        return {
            r["sop_instance_uid"] for r in db.query("SELECT sop_instance_uid FROM dicom_instances")
        }
    finally:
        db.close()


def _stored(store: Path) -> list[Path]:
    return sorted((store / "files").glob("*/*/*.dcm"))


def _incoming_left(store: Path) -> list[Path]:
    return list((store / "files" / ".incoming").glob("*"))


def test_move_through_storescp_stores_indexes_and_reports_each_instance(
    tmp_path, pacs, storescp_calls
):
    store = tmp_path / "store"
    node = _store_with(store, "pacs", pacs.orthanc.ae_title, pacs.orthanc.dicom_port)
    seen: list[tuple[int, int]] = []
    arrived: list[str] = []
    report = retrieve(
        store,
        node,
        pacs.study_uid,
        move=True,
        ae_title=OUR_AE,
        port=pacs.listener_port,
        listen_host="127.0.0.1",
        progress=lambda done, total, uid: seen.append((done, total)),
        on_received=lambda item: arrived.append(item.sop_instance_uid),
        backend="dcmtk",
    )
    assert storescp_calls == ["storescp"]
    assert report.complete, report.to_dict()
    assert report.method == "C-MOVE" and len(report.received) == 10
    assert seen == [(n, 10) for n in range(1, 11)]
    assert sorted(arrived) == sorted(report.expected)
    assert {p.stem for p in _stored(store)} == set(report.expected)
    assert report.bytes == sum(p.stat().st_size for p in _stored(store))
    assert _indexed(store) == set(report.expected)
    assert not _incoming_left(store)  # the private folder and its lock are gone
    for path in _stored(store):
        assert dcmread(path).StudyInstanceUID == pacs.study_uid


def test_a_running_listener_on_the_port_receives_instead(tmp_path, pacs, storescp_calls):
    store = tmp_path / "store"
    node = _store_with(store, "pacs", pacs.orthanc.ae_title, pacs.orthanc.dicom_port)
    with Listener(store, OUR_AE, pacs.listener_port, host="127.0.0.1") as running:
        report = retrieve(
            store,
            node,
            pacs.study_uid,
            pacs.series_uids[0],
            move=True,
            ae_title=OUR_AE,
            port=pacs.listener_port,
            backend="dcmtk",
        )
        running.flush()
    assert storescp_calls == ["port busy"]  # storescp never ran: nothing was sent to it
    assert report.complete, report.to_dict()
    assert len(report.received) == 6
    assert _indexed(store) == set(report.expected)


def test_pynetdicom_backend_still_receives_a_move(tmp_path, pacs, storescp_calls):
    store = tmp_path / "store"
    node = _store_with(store, "pacs", pacs.orthanc.ae_title, pacs.orthanc.dicom_port)
    report = retrieve(
        store,
        node,
        pacs.study_uid,
        pacs.series_uids[1],
        move=True,
        ae_title=OUR_AE,
        port=pacs.listener_port,
        listen_host="127.0.0.1",
        backend="pynetdicom",
    )
    assert storescp_calls == []
    assert report.complete, report.to_dict()
    assert len(report.received) == 4
    assert _indexed(store) == set(report.expected)


def _move_from_peer(folder: Path, store: Path, kill_at: int, seen: list) -> tuple:
    """retrieve(move=True) of FOLDER's study from dying_peer.py run as a peer; (report, peer)."""
    study = str(dcmread(next(folder.glob("*.dcm"))).StudyInstanceUID)
    our_port = free_port()
    peer_port = free_port()
    arguments = [str(folder), str(peer_port), PEER_AE, str(kill_at), f"move={our_port}"]
    peer = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("dying_peer.py")), *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert peer.stdout is not None
        line = peer.stdout.readline()
        assert line.strip() == "ready", line + peer.stdout.read()
        node = _store_with(store, "peer", PEER_AE, peer_port)
        report = retrieve(
            store,
            node,
            study,
            move=True,
            ae_title=OUR_AE,
            port=our_port,
            listen_host="127.0.0.1",
            progress=lambda done, total, uid: seen.append((done, total)),
            backend="dcmtk",
        )
    finally:
        peer.kill()
        peer.wait()
    return report, peer


def test_a_node_that_refuses_us_is_named_and_nothing_is_left(tmp_path, pacs, storescp_calls):
    from workstation.dicom.net import PacsError

    store = tmp_path / "store"
    node = _store_with(store, "pacs", pacs.orthanc.ae_title, pacs.orthanc.dicom_port)
    # Orthanc serves only AE titles it knows; this one is not in its DicomModalities
    with pytest.raises(PacsError, match=r"node 'pacs' \(ORTHANCTEST@127\.0\.0\.1:\d+\) could"):
        retrieve(
            store, node, pacs.study_uid, move=True, ae_title="STRANGER",
            port=pacs.listener_port, backend="dcmtk",
        )  # fmt: skip
    assert storescp_calls == ["storescp"]
    assert not _stored(store) and not _incoming_left(store)


def test_move_without_dcmtk_installed_uses_our_listener(
    tmp_path, pacs, storescp_calls, monkeypatch, capsys
):
    from workstation.cli import main

    monkeypatch.delenv("WORKSTATION_PACS_BACKEND", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no storescp, movescu or findscu here
    store = tmp_path / "store"
    _store_with(store, "orthanc", pacs.orthanc.ae_title, pacs.orthanc.dicom_port)
    code = main(
        [
            "--store", str(store), "pacs", "get", "orthanc", "--study", pacs.study_uid,
            "--series", pacs.series_uids[1], "--move", "--port", str(pacs.listener_port),
            "--ae-title", OUR_AE,
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "4 of 4 instances received and indexed" in capsys.readouterr().out
    assert storescp_calls == []
    assert len(_indexed(store)) == 4


def test_peer_dying_mid_object_keeps_whole_objects_and_names_the_rest(
    tmp_path, ct_series, storescp_calls
):
    ct_series(tmp_path / "study", 8, size=64)
    store = tmp_path / "store"
    seen: list[tuple[int, int]] = []
    report, peer = _move_from_peer(tmp_path / "study", store, 4, seen)
    assert peer.returncode == -signal.SIGKILL  # it did die mid-transfer
    assert storescp_calls == ["storescp"]
    assert not report.complete and report.problem_kind == "lost", report.to_dict()
    assert len(report.expected) == 8
    assert len(report.received) == 3  # objects 1-3 whole; the 4th was cut off mid-PDU
    assert seen == [(1, 8), (2, 8), (3, 8)]
    assert sorted(report.missing) == sorted(set(report.expected) - set(report.received))
    files = _stored(store)
    assert {f.stem for f in files} == set(report.received)
    for f in files:
        assert dcmread(f).pixel_array.shape == (64, 64)
    assert not _incoming_left(store)  # nothing half-written left
    assert _indexed(store) == set(report.received)


def test_instances_the_node_failed_to_send_are_named_from_its_answer(
    tmp_path, ct_series, storescp_calls
):
    paths = ct_series(tmp_path / "study", 5, size=32)
    odd = dcmread(paths[2])  # a kind of object storescp does not accept: its sub-operation fails
    odd.SOPClassUID = odd.file_meta.MediaStorageSOPClassUID = "1.2.826.0.1.3680043.8.498.999"
    odd.save_as(paths[2])
    store = tmp_path / "store"
    seen: list[tuple[int, int]] = []
    report, _ = _move_from_peer(tmp_path / "study", store, 0, seen)
    assert storescp_calls == ["storescp"]
    assert report.final_status == 0xB000  # sub-operations complete, one or more failures
    assert report.failed_on_peer == [str(odd.SOPInstanceUID)]
    assert report.missing == [str(odd.SOPInstanceUID)]
    assert report.completed_on_peer == 4 and len(report.received) == 4
    assert not report.problem
    assert seen == [(n, 5) for n in range(1, 5)]
    assert _indexed(store) == set(report.received)


# -- what storescp's log may not make us do ------------------------------------------------------
@pytest.fixture
def storescp_folder(tmp_path, ct_series):
    """Files as storescp leaves them in its private folder, and the log reader over them."""
    from workstation.dicom.net.dcmtk_files import FileReceiver
    from workstation.dicom.net.dcmtk_move import DcmtkMoveResult, _StorescpLog
    from workstation.dicom.net.nodes import Node
    from workstation.dicom.net.receive import InlineIndexer

    paths = ct_series(tmp_path / "src", 2, size=32)
    study = str(dcmread(paths[0]).StudyInstanceUID)
    store = tmp_path / "store"
    work = store / "files" / ".incoming" / "get-test"
    work.mkdir(parents=True)
    placed = []
    for path in paths:
        target = work / f"CT.{dcmread(path).SOPInstanceUID}"
        shutil.copy(path, target)
        placed.append(target)
    result = DcmtkMoveResult(expected=[p.name[3:] for p in placed])
    indexer = InlineIndexer(store)
    node = Node("pacs", "PACS", "127.0.0.1", 104)
    receiver = FileReceiver(store, node, study, None, result, indexer, work, program="storescp")
    log = _StorescpLog(receiver, result, {"PACS"}, OUR_AE)
    yield store, placed, log, result
    indexer.close()


def _association(calling: str, called: str = OUR_AE) -> bytes:
    return (
        "I: Association Received\n"
        f"D: Calling Application Name:    {calling}\n"
        f"D: Called Application Name:     {called}\n"
        "I: Received Store Request\n"
    ).encode()


def test_a_file_named_outside_storescps_folder_is_refused_and_left_alone(storescp_folder, tmp_path):
    store, (first, _), log, result = storescp_folder
    outside = tmp_path / "elsewhere" / first.name
    outside.parent.mkdir()
    shutil.copy(first, outside)
    escaping = first.parent / ".." / ".." / ".." / ".." / "elsewhere" / first.name
    log.feed(_association("PACS") + f"I: storing DICOM file: {escaping}\n".encode())
    log.feed(b"I: Association Release\n")
    assert not result.received
    assert result.rejected == [f"storescp named a file outside its folder: {str(escaping)!r}"]
    assert outside.exists()  # never moved or deleted
    assert first.exists()
    assert not _stored(store)


def test_objects_from_an_unregistered_caller_or_for_another_ae_are_refused(storescp_folder):
    store, (first, second), log, result = storescp_folder
    log.feed(_association("INTRUDER") + f"I: storing DICOM file: {first}\n".encode())
    log.feed(_association("PACS", "OTHERAE") + f"I: storing DICOM file: {second}\n".encode())
    log.feed(b"I: Association Release\n")
    assert not result.received
    assert result.rejected == [
        "sent by AE title 'INTRUDER', which is not a registered node",
        f"sent to AE title 'OTHERAE', not ours ({OUR_AE!r})",
    ]
    assert not first.exists() and not second.exists()
    assert not _stored(store)


def test_a_file_is_taken_only_once_storescp_has_moved_on(storescp_folder):
    store, (first, second), log, result = storescp_folder
    second.write_bytes(second.read_bytes()[:-300])  # what a broken object looks like
    log.feed(_association("PACS") + f"I: storing DICOM file: {first}\n".encode())
    assert not result.received  # still being written, as far as we know
    log.feed(f"I: Received Store Request\nI: storing DICOM file: {second}\n".encode())
    assert [item.sop_instance_uid for item in result.received] == [first.name[3:]]
    log.feed(b"I: Association Release\n")
    assert len(result.rejected) == 1 and "truncated" in result.rejected[0]
    assert [p.stem for p in _stored(store)] == [first.name[3:]]
    assert not second.exists()
