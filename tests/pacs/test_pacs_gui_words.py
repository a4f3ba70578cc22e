"""The query/retrieve dialog says the right sentence for each cause: a stopped PACS is "could
not be reached" (not an AE-title problem), a wrong AE title for the node is the node's AE
title, and a retrieval from a stopped PACS (run in the child process) says the same."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from pacs_peers import free_port
from PySide6.QtCore import QSettings, Qt

from workstation.dicom.net import Listener, NodeStore
from workstation.gui.main_window import MainWindow
from workstation.gui.pacs_retrieval import Target

pytestmark = [pytest.mark.gui, pytest.mark.network]
OUR_AE = "WSGUI"


@pytest.fixture
def window(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("pacs/ae_title", OUR_AE)
    settings.setValue("pacs/listener_port", free_port())
    store = tmp_path / "store"
    peer_store = tmp_path / "peer"
    nodes = NodeStore(peer_store)
    nodes.add("us", OUR_AE, "127.0.0.1", 104)  # the peer knows our AE title
    nodes.close()
    with Listener(peer_store, "PEER", free_port(), host="127.0.0.1") as peer:
        nodes = NodeStore(store)
        nodes.add("stopped", "ORTHANC", "127.0.0.1", free_port())  # nothing listens there
        nodes.add("wrongae", "NOTPEER", "127.0.0.1", peer.port)
        nodes.close()
        win = MainWindow(store, settings=settings)
        qtbot.addWidget(win)
        win.show()
        yield win
        win.close()


def _dialog_for(window, name: str):
    dialog = window.pacs.show_dialog()
    dialog.node_box.setCurrentIndex(
        dialog.node_box.findText(f"{name} ", Qt.MatchFlag.MatchStartsWith)
    )
    assert dialog.current_node().name == name
    return dialog


def _search(qtbot, dialog) -> int:
    dialog.clear_fields()
    with qtbot.waitSignal(dialog.search_finished, timeout=20000) as blocker:
        dialog.search_button.click()
    return blocker.args[0]


def test_a_stopped_pacs_is_not_blamed_on_our_ae_title(qtbot, window):
    dialog = _dialog_for(window, "stopped")
    assert _search(qtbot, dialog) == -1
    text = dialog.message.text()
    assert text.startswith(
        "The PACS could not be reached: is it running, and are its host and port right?"
    )
    assert "does not accept our AE title" not in text
    assert "connection refused" in text

    with qtbot.waitSignal(dialog.retrieval_finished, timeout=60000) as blocker:
        dialog.start_retrieval([Target("1.2.3.4", label="Study of Jane Doe", expected=2)])
    (outcome,) = blocker.args[0]
    assert outcome.kind == "unreachable"
    log = dialog.log.toPlainText()
    assert "Study of Jane Doe: not retrieved. The PACS could not be reached" in log


def test_a_wrong_ae_title_for_the_node_is_said_as_such(qtbot, window):
    dialog = _dialog_for(window, "wrongae")
    dialog.echo_button.click()
    qtbot.waitUntil(lambda: "Details:" in dialog.message.text(), timeout=20000)
    text = dialog.message.text()
    assert text.startswith(
        "The PACS refused the connection: the AE title set for this node is not the PACS's own."
    )
    assert "'NOTPEER'" in text
