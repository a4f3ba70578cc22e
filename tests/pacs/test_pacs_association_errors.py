"""Why an association could not be opened, said so an administrator knows what to fix: a host
name that does not resolve, nothing listening on the port, our AE title unknown to the peer,
or the node configured with the wrong AE title. Real peers: our listener (it answers with a
real A-ASSOCIATE-RJ), Orthanc and dcmtk's getscu; and the GUI's words for each cause."""

from __future__ import annotations

import pytest
from pacs_peers import free_port

from workstation.cli import main
from workstation.dicom.net import Listener, Node, NodeStore, PacsError, echo, find, retrieve
from workstation.dicom.net.scu import send_files
from workstation.gui.pacs_retrieval import plain_error

pytestmark = pytest.mark.network
OUR_AE = "WSTEST"


def _raised(call) -> PacsError:
    with pytest.raises(PacsError) as caught:
        call()
    return caught.value


@pytest.fixture
def peer(tmp_path):
    """A listener (AE PEER) that knows only the AE title WSTEST: it accepts us and rejects
    anyone else, and any called AE title but its own."""
    store = tmp_path / "peer"
    nodes = NodeStore(store)
    nodes.add("us", OUR_AE, "127.0.0.1", 104)
    nodes.close()
    with Listener(store, "PEER", free_port(), host="127.0.0.1") as listener:
        yield listener


def test_a_host_name_that_does_not_resolve_names_node_and_host(tmp_path, capsys, ct_series):
    node = Node("badhost", "X", "somehost.invalid", 104)
    files = ct_series(tmp_path / "one", 1)
    for call in (
        lambda: echo(node, ae_title=OUR_AE),
        lambda: find(node, "study", ae_title=OUR_AE),
        lambda: retrieve(tmp_path / "s", node, "1.2.3", ae_title=OUR_AE, backend="pynetdicom"),
        lambda: retrieve(
            tmp_path / "s", node, "1.2.3", ae_title=OUR_AE, move=True, port=free_port()
        ),
        lambda: send_files(node, files, ae_title=OUR_AE),
    ):
        error = _raised(call)
        assert error.kind == "host_unknown"
        assert "node 'badhost' (X@somehost.invalid:104)" in str(error)
        assert "host name 'somehost.invalid' does not resolve" in str(error)

    store = tmp_path / "store"
    assert (
        main(["--store", str(store), "pacs", "add-node", "badhost", "X", "somehost.invalid", "104"])
        == 0
    )
    capsys.readouterr()
    assert main(["--store", str(store), "pacs", "echo", "badhost"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "does not resolve" in err and "'badhost'" in err


def test_get_through_dcmtk_names_an_unknown_host(tmp_path):
    from workstation.dicom.net import dcmtk_get

    if not dcmtk_get.available():
        pytest.skip("dcmtk's getscu and findscu are not installed (apt-get install dcmtk)")
    node = Node("badhost", "X", "somehost.invalid", 104)
    error = _raised(lambda: retrieve(tmp_path / "s", node, "1.2.3", backend="dcmtk"))
    assert error.kind == "host_unknown" and "does not resolve" in str(error)


def test_nothing_listening_is_told_apart_from_a_refusal(tmp_path, capsys):
    node = Node("wrongport", "ORTHANC", "127.0.0.1", free_port())
    error = _raised(lambda: echo(node, ae_title=OUR_AE))
    assert error.kind == "unreachable"
    assert str(error) == (
        f"node 'wrongport' (ORTHANC@127.0.0.1:{node.port}) could not be reached: "
        "connection refused (is it running, is the port right?)"
    )
    text = plain_error(error, OUR_AE)
    assert text.startswith("The PACS could not be reached: is it running")
    assert "AE title" not in text.split("\n")[0]


@pytest.mark.parametrize("backend", ["pynetdicom", "dcmtk"])
def test_get_from_a_stopped_pacs_says_it_could_not_be_reached(tmp_path, backend):
    from workstation.dicom.net import dcmtk_get

    if backend == "dcmtk" and not dcmtk_get.available():
        pytest.skip("dcmtk's getscu and findscu are not installed (apt-get install dcmtk)")
    node = Node("pacs", "ORTHANC", "127.0.0.1", free_port())
    error = _raised(
        lambda: retrieve(tmp_path / "s", node, "1.2.3", ae_title=OUR_AE, backend=backend)
    )
    assert error.kind == "unreachable"
    assert "could not be reached: connection refused" in str(error)


def test_our_ae_title_unknown_to_the_peer_is_named(peer):
    node = Node("strict", "PEER", "127.0.0.1", peer.port)
    error = _raised(lambda: echo(node, ae_title="STRANGER"))
    assert error.kind == "calling_ae_rejected"
    assert "does not accept our AE title 'STRANGER' (calling AE title not recognised)" in str(error)
    assert plain_error(error, "STRANGER").startswith(
        "The PACS refused the connection: it does not accept our AE title 'STRANGER'"
    )


def test_a_wrong_ae_title_for_the_node_is_named(peer, tmp_path):
    node = Node("wrongae", "NOTPEER", "127.0.0.1", peer.port)
    error = _raised(lambda: echo(node, ae_title=OUR_AE))
    assert error.kind == "called_ae_rejected"
    assert str(error).startswith(
        f"node 'wrongae' (NOTPEER@127.0.0.1:{peer.port}) does not answer to AE title 'NOTPEER' "
        "(called AE title not recognised): check the node's AE title"
    )
    words = plain_error(error, OUR_AE)
    assert "the AE title set for this node is not the PACS's own" in words
    assert "our AE title" not in words.split("\n")[0]

    from workstation.dicom.net import dcmtk_get

    if dcmtk_get.available():  # getscu meets the same refusal; the words are the same
        error = _raised(
            lambda: retrieve(tmp_path / "s", node, "1.2.3", ae_title=OUR_AE, backend="dcmtk")
        )
        assert error.kind == "called_ae_rejected" and "check the node's AE title" in str(error)


def test_gui_words_follow_the_kind_sent_by_the_retrieval_process():
    """The retrieval child process sends `kind` with the message (JSON); the words follow it."""
    message = "node 'pacs' (ORTHANC@127.0.0.1:4242) could not be reached: connection refused"
    assert plain_error(message, "WS", "unreachable").startswith("The PACS could not be reached")
    assert plain_error("anything", "WS", "called_ae_rejected").startswith(
        "The PACS refused the connection: the AE title set for this node"
    )
    assert "another program or listener" in plain_error("x", "WS", "arrived_elsewhere")
    assert "our AE title 'WS' at this computer's address" in plain_error("x", "WS", "move_failed")
    # a message from before kinds existed still gets its words
    assert plain_error("node 'p' aborted the association request", "WS").startswith(
        "The PACS broke off the connection"
    )
