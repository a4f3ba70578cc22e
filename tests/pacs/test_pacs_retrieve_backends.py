"""C-GET through dcmtk's getscu and through pynetdicom: same guarantees, chosen as the user says.

Covered for both: a peer that dies while sending an object (complete objects kept and indexed,
the rest named, nothing half-written); for the getscu path: objects that fail the checks are
refused and never reach the store; and the choice of path (option, environment, fallback when
dcmtk is not installed).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pacs_peers import free_port
from pydicom import dcmread

from workstation.cli import main
from workstation.dicom.net import NodeStore, PacsError, retrieve
from workstation.dicom.net.dcmtk_get import DcmtkGetResult, _FileReceiver
from workstation.dicom.net.receive import FILES_DIR, INCOMING_DIR, InlineIndexer
from workstation.dicom.net.scu import BACKEND_ENV, choose_backend

pytestmark = pytest.mark.network
OUR_AE = "WSTEST"
PEER_AE = "DYINGPACS"


def _start_dying_peer(folder: Path, kill_at: int, *options: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("dying_peer.py")),
            str(folder),
            str(port),
            PEER_AE,
            str(kill_at),
            *options,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.strip() == "ready", line
    return process, port


def test_peer_dying_mid_object_keeps_whole_objects_and_names_the_rest(
    tmp_path, ct_series, retrieval_backend
):
    paths = ct_series(tmp_path / "study", 8, size=64)
    study = str(dcmread(paths[0]).StudyInstanceUID)
    peer, port = _start_dying_peer(tmp_path / "study", kill_at=4)
    try:
        store = tmp_path / "store"
        nodes = NodeStore(store)
        node = nodes.add("dying", PEER_AE, "127.0.0.1", port)
        nodes.close()
        seen: list[tuple[int, int]] = []
        report = retrieve(
            store,
            node,
            study,
            ae_title=OUR_AE,
            progress=lambda done, total, uid: seen.append((done, total)),
            backend=retrieval_backend,
        )
    finally:
        peer.kill()
        peer.wait()
    assert peer.returncode == -9  # it did die mid-transfer
    assert not report.complete and report.problem
    assert len(report.expected) == 8
    assert len(report.received) == 3  # objects 1-3 whole; the 4th was cut off mid-PDU
    assert seen == [(1, 8), (2, 8), (3, 8)]
    assert sorted(report.missing) == sorted(set(report.expected) - set(report.received))
    files = sorted((store / FILES_DIR).glob("*/*/*.dcm"))
    assert {f.stem for f in files} == set(report.received)
    for f in files:
        assert dcmread(f).pixel_array.shape == (64, 64)
    assert not list((store / FILES_DIR / INCOMING_DIR).glob("*"))  # nothing half-written left
    pytest.importorskip("workstation.dicom.headers")
    from workstation.dicom.index import open_index

    db = open_index(store)
    try:
        rows = db.query("SELECT sop_instance_uid FROM dicom_instances")
        indexed = {r["sop_instance_uid"] for r in rows}
    finally:
        db.close()
    assert indexed == set(report.received)


def test_a_pacs_that_wants_a_series_uid_is_listed_series_by_series(
    tmp_path, ct_series, retrieval_backend
):
    paths = ct_series(tmp_path / "study", 3, size=16)
    study = str(dcmread(paths[0]).StudyInstanceUID)
    peer, port = _start_dying_peer(tmp_path / "study", 0, "strict")
    try:
        store = tmp_path / "store"
        nodes = NodeStore(store)
        node = nodes.add("strict", PEER_AE, "127.0.0.1", port)
        nodes.close()
        report = retrieve(store, node, study, ae_title=OUR_AE, backend=retrieval_backend)
    finally:
        peer.kill()
        peer.wait()
    assert report.complete, report.to_dict()
    assert sorted(report.expected) == sorted(str(dcmread(p).SOPInstanceUID) for p in paths)


@pytest.fixture
def getscu_folder(tmp_path, ct_series):
    """Files as getscu leaves them (named <modality>.<SOP Instance UID>), and a receiver."""
    from workstation.dicom.net.nodes import Node

    paths = ct_series(tmp_path / "src", 2, size=32)
    study = str(dcmread(paths[0]).StudyInstanceUID)
    store = tmp_path / "store"
    work = store / FILES_DIR / INCOMING_DIR / "get-test"
    work.mkdir(parents=True)
    placed = []
    for path in paths:
        target = work / f"CT.{dcmread(path).SOPInstanceUID}"
        shutil.copy(path, target)
        placed.append(target)
    result = DcmtkGetResult(expected=[p.name[3:] for p in placed])
    indexer = InlineIndexer(store)
    node = Node("pacs", "PACS", "127.0.0.1", 104)
    receiver = _FileReceiver(store, node, study, None, result, indexer)
    yield store, placed, receiver, result
    indexer.close()


def test_getscu_files_that_fail_the_checks_never_reach_the_store(getscu_folder, caplog):
    store, (whole, cut), receiver, result = getscu_folder
    cut.write_bytes(cut.read_bytes()[:-500])
    receiver.take(whole)
    receiver.take(cut)
    assert [item.sop_instance_uid for item in result.received] == [whole.name[3:]]
    assert len(result.rejected) == 1 and "truncated" in result.rejected[0]
    assert "truncated" in caplog.text
    assert not cut.exists()  # the broken copy is gone, never renamed into the store
    stored = list((store / FILES_DIR).glob("*/*/*.dcm"))
    assert [p.stem for p in stored] == [whole.name[3:]]


def test_getscu_files_from_another_study_or_misnamed_are_refused(getscu_folder):
    store, (first, second), receiver, result = getscu_folder
    receiver.study_uid = "1.2.3.4"  # we asked for another study than these objects belong to
    receiver.take(first)
    misnamed = second.with_name("CT.1.2.3.999")  # getscu's name: the C-STORE request's UID
    second.rename(misnamed)
    receiver.study_uid = str(dcmread(misnamed).StudyInstanceUID)
    receiver.take(misnamed)
    assert not result.received
    assert "another study" in result.rejected[0]
    assert "differs from the C-STORE request" in result.rejected[1]
    assert not list((store / FILES_DIR).glob("*/*/*.dcm"))


def test_backend_follows_the_option_then_the_environment_then_what_is_installed(
    monkeypatch, tmp_path
):
    from workstation.dicom.net import dcmtk_get

    monkeypatch.delenv(BACKEND_ENV, raising=False)
    installed = dcmtk_get.available()
    assert choose_backend() == ("dcmtk" if installed else "pynetdicom")
    assert choose_backend("pynetdicom") == "pynetdicom"
    monkeypatch.setenv(BACKEND_ENV, "pynetdicom")
    assert choose_backend() == "pynetdicom"
    with pytest.raises(PacsError, match="unknown retrieval backend 'fast'"):
        choose_backend("fast")
    # without dcmtk on the PATH: auto falls back, an explicit request says what to install
    monkeypatch.delenv(BACKEND_ENV)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert choose_backend() == "pynetdicom"
    with pytest.raises(PacsError, match="apt-get install dcmtk"):
        choose_backend("dcmtk")


def test_get_without_dcmtk_installed_uses_pynetdicom(tmp_path, pacs, monkeypatch, capsys):
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no getscu, no findscu here
    store = tmp_path / "store"
    nodes = NodeStore(store)
    nodes.add("orthanc", pacs.orthanc.ae_title, "127.0.0.1", pacs.orthanc.dicom_port)
    nodes.close()
    series = pacs.series_uids[1]
    args = ["--store", str(store), "pacs", "get", "orthanc", "--study", pacs.study_uid]
    code = main([*args, "--series", series, "--ae-title", OUR_AE])
    assert code == 0, capsys.readouterr().err
    assert "4 of 4 instances received and indexed" in capsys.readouterr().out
    assert main([*args, "--backend", "dcmtk", "--ae-title", OUR_AE]) == 1
    assert "apt-get install dcmtk" in capsys.readouterr().err


def test_dcmtk_path_refuses_a_malformed_uid_before_running_anything(tmp_path):
    from workstation.dicom.net import dcmtk_get
    from workstation.dicom.net.nodes import Node

    if not dcmtk_get.available():
        pytest.skip("dcmtk's getscu and findscu are not installed (apt-get install dcmtk)")
    node = Node("pacs", "PACS", "127.0.0.1", free_port())
    with pytest.raises(PacsError, match=r"study UID '1\.2\.3 -od /tmp' is not a valid DICOM UID"):
        retrieve(tmp_path / "store", node, "1.2.3 -od /tmp", backend="dcmtk")
    assert not (tmp_path / "store").exists()
