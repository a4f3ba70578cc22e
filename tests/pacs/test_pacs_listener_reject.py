"""Our listener refuses strangers with a real A-ASSOCIATE-RJ and its reason, so the sending
modality or PACS (and its administrator) sees "calling AE title not recognised" rather than
"peer aborted"."""

from __future__ import annotations

import subprocess

import pytest
from pacs_peers import DCMTK_ENV, free_port
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from workstation.dicom.net import Listener, NodeStore

pytestmark = pytest.mark.network
OUR_AE = "WSTEST"


@pytest.fixture
def listener(tmp_path):
    store = tmp_path / "store"
    nodes = NodeStore(store)
    nodes.add("modality", "STORESCU", "127.0.0.1", 104)
    nodes.close()
    with Listener(store, OUR_AE, free_port(), host="127.0.0.1") as running:
        yield running


def _associate(port: int, calling: str, called: str):
    ae = AE(ae_title=calling)
    ae.add_requested_context(Verification)
    return ae.associate("127.0.0.1", port, ae_title=called)


@pytest.mark.parametrize(
    ("calling", "called", "diagnostic"),
    [("INTRUDER", OUR_AE, 0x03), ("STORESCU", "NOTUS", 0x07)],
)
def test_refused_callers_get_a_reject_with_the_reason(listener, calling, called, diagnostic):
    assoc = _associate(listener.port, calling, called)
    assert assoc.is_rejected and not assoc.is_aborted
    reply = assoc.acceptor.primitive
    assert (reply.result, reply.result_source, reply.diagnostic) == (0x01, 0x01, diagnostic)


def test_a_node_added_while_listening_is_accepted_at_once(listener):
    assert _associate(listener.port, "NEWNODE", OUR_AE).is_rejected
    nodes = NodeStore(listener.store_dir)
    nodes.add("new", "NEWNODE", "127.0.0.1", 104)
    nodes.close()
    assoc = _associate(listener.port, "NEWNODE", OUR_AE)
    assert assoc.is_established
    assoc.release()


def test_storescu_is_told_its_ae_title_is_not_recognised(listener, tmp_path, ct_series):
    from workstation.dicom.net.dcmtk_get import dcmtk_tool

    binary = dcmtk_tool("storescu")
    if binary is None:
        pytest.skip("dcmtk's storescu is not installed (apt-get install dcmtk)")
    path = ct_series(tmp_path / "x", 1)[0]
    result = subprocess.run(
        [binary, "-aet", "STRANGER", "-aec", OUR_AE, "127.0.0.1", str(listener.port), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=DCMTK_ENV,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Association Rejected" in output and "Calling AE Title Not Recognized" in output
    assert "Peer aborted" not in output
