"""C-MOVE that does not bring the objects into this store says why: the node could not reach
our listener (it must know our AE title and port), or it delivered them to another listener
on our port that stores somewhere else. Against a real Orthanc."""

from __future__ import annotations

import json

import pytest
from pacs_peers import free_port
from pydicom import dcmread

from workstation.cli import main
from workstation.dicom.net import Listener, NodeStore, retrieve

pytestmark = pytest.mark.network
OUR_AE = "WSTEST"


def _store_with_node(store, server) -> None:
    nodes = NodeStore(store)
    nodes.add("pacs", server.ae_title, "127.0.0.1", server.dicom_port)
    nodes.close()


def test_objects_delivered_to_another_stores_listener_are_not_called_missing_silently(
    tmp_path, pacs, capsys
):
    other = tmp_path / "other-store"
    mine = tmp_path / "my-store"
    _store_with_node(mine, pacs.orthanc)
    # another store's listener holds the port Orthanc sends our AE title's C-MOVEs to
    with Listener(other, OUR_AE, pacs.listener_port, host="127.0.0.1", accept_any=True) as held:
        code = main(
            [
                "--store", str(mine), "pacs", "get", "pacs", "--study", pacs.study_uid,
                "--series", pacs.series_uids[1], "--move", "--port", str(pacs.listener_port),
                "--ae-title", OUR_AE, "--json",
            ]
        )  # fmt: skip
        held.flush()
    assert code == 2
    report = json.loads(capsys.readouterr().out)
    assert report["problem_kind"] == "arrived_elsewhere"
    assert report["problem"].startswith(
        "the node reports 4 sub-operation(s) completed but none arrived in this store; "
        f"port {pacs.listener_port} is in use by another program or by a listener"
    )
    assert report["received"] == 0 and len(report["missing"]) == 4
    assert len(list(other.rglob("*.dcm"))) == 4  # where they went


def test_a_move_the_node_cannot_deliver_names_what_it_must_know(
    tmp_path, orthanc_factory, ct_series, capsys
):
    # Orthanc believes our AE title is on a port where nothing listens
    server = orthanc_factory({"workstation": (OUR_AE, free_port())})
    paths = ct_series(tmp_path / "src", 2)
    server.upload(paths)
    store = tmp_path / "store"
    _store_with_node(store, server)
    our_port = free_port()
    study = str(dcmread(paths[0]).StudyInstanceUID)
    report = retrieve(
        store, _node(store), study, move=True, ae_title=OUR_AE, port=our_port,
        listen_host="127.0.0.1",
    )  # fmt: skip
    assert report.problem_kind == "move_failed"
    assert report.problem.startswith("node 'pacs' ended C-MOVE with status 0x")
    assert (
        f"it must know AE title 'WSTEST' at this computer's address, port {our_port} "
        "(our listener port, --port)"
    ) in report.problem
    assert len(report.missing) == 2


def _node(store):
    nodes = NodeStore(store)
    try:
        return nodes.get("pacs")
    finally:
        nodes.close()
