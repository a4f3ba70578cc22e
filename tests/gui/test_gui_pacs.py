"""The PACS menu of the main window against a real Orthanc on 127.0.0.1: the query/retrieve
dialog (find, retrieve into the browser, refusal and cancel in plain words) and the listener
switch receiving from dcmtk's storescu."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QDate, QSettings, Qt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pacs"))
from pacs_peers import DCMTK_ENV, Orthanc, free_port, orthanc_binary, write_ct_series
from pydicom import dcmread
from pydicom.dataset import Dataset

from workstation.dicom.net import Listener, NodeStore
from workstation.gui.main_window import MainWindow
from workstation.gui.pacs_retrieval import Target, TargetOutcome, describe_outcome

pytestmark = [pytest.mark.gui, pytest.mark.network]
OUR_AE = "WSGUI"


class Seeded:
    def __init__(
        self, orthanc: Orthanc, study_uid: str, series: dict[str, int], move_port: int
    ) -> None:
        self.orthanc, self.study_uid, self.series = orthanc, study_uid, series
        self.move_port = move_port  # where Orthanc sends C-MOVEs for our AE title


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory):
    """One Orthanc for this module with a two-series CT study (5 and 3 small images)."""
    if orthanc_binary() is None:
        pytest.skip("Debian's Orthanc is not installed (apt-get install orthanc dcmtk)")
    work = tmp_path_factory.mktemp("orthanc-gui")
    move_port = free_port()
    server = Orthanc(work / "server", {"workstation": (OUR_AE, move_port)}).start()
    first = write_ct_series(work / "a", 5, size=16, series_number=1)
    study = str(dcmread(first[0]).StudyInstanceUID)
    second = write_ct_series(work / "b", 3, size=16, study_uid=study, series_number=2)
    server.upload(first + second)
    series = {str(dcmread(p[0]).SeriesInstanceUID): len(p) for p in (first, second)}
    yield Seeded(server, study, series, move_port)
    server.stop()


@pytest.fixture
def settings(tmp_path):
    s = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    s.setValue("pacs/ae_title", OUR_AE)
    s.setValue("pacs/listener_port", free_port())
    return s


@pytest.fixture
def window(qtbot, tmp_path, settings, orthanc):
    store = tmp_path / "store"
    nodes = NodeStore(store)
    nodes.add("orthanc", orthanc.orthanc.ae_title, "127.0.0.1", orthanc.orthanc.dicom_port)
    nodes.add("modality", "STORESCU", "127.0.0.1", 104)
    nodes.close()
    win = MainWindow(store, settings=settings)
    qtbot.addWidget(win)
    win.resize(1200, 700)
    win.show()
    yield win
    win.close()


def _search(qtbot, dialog, level: str, keep_dates: bool = False, **fields: str) -> int:
    if keep_dates:
        choice = dialog.date_choice.currentText()
        dialog.clear_fields()
        dialog.date_choice.setCurrentText(choice)
    else:
        dialog.clear_fields()
    dialog.level_box.setCurrentText(level)
    for name, value in fields.items():
        getattr(dialog, name).setText(value)
    with qtbot.waitSignal(dialog.search_finished, timeout=20000) as blocker:
        dialog.search_button.click()
    return blocker.args[0]


def _choose(dialog, node_name: str) -> None:
    dialog.node_box.setCurrentIndex(
        dialog.node_box.findText(f"{node_name} ", Qt.MatchFlag.MatchStartsWith)
    )
    assert dialog.current_node().name == node_name


def _table(dialog) -> list[list[str]]:
    t = dialog.table
    return [[t.item(r, c).text() for c in range(t.columnCount())] for r in range(t.rowCount())]


def _headers(dialog) -> list[str]:
    t = dialog.table
    return [t.horizontalHeaderItem(c).text() for c in range(t.columnCount())]


def test_find_shows_the_study_and_its_series_sortable(qtbot, window, orthanc, shots_dir):
    dialog = window.pacs.show_dialog()
    assert dialog.current_node().name in ("modality", "orthanc")
    _choose(dialog, "orthanc")
    dialog.echo_button.click()
    qtbot.waitUntil(lambda: "orthanc answers (C-ECHO" in dialog.message.text(), timeout=20000)
    dialog.date_choice.setCurrentText("Between")
    dialog.date_from.setDate(QDate(2023, 6, 1))
    dialog.date_to.setDate(QDate(2023, 12, 31))
    assert _search(qtbot, dialog, "study", keep_dates=True) == 0  # the study is of 2024-03-15
    dialog.date_to.setDate(QDate(2024, 3, 15))
    assert _search(qtbot, dialog, "study", keep_dates=True) == 1
    assert _search(qtbot, dialog, "study", patient_id="MRN-4471923") == 1
    headers = _headers(dialog)
    (row,) = _table(dialog)
    shown = dict(zip(headers, row, strict=True))
    assert shown["Patient name"] == "Doe, Jane Quinn"
    assert shown["Date"] == "2024-03-15"
    assert shown["Images"] == "8"
    assert shown["Study UID"] == orthanc.study_uid

    # double-click drills down to the study's series
    with qtbot.waitSignal(dialog.search_finished, timeout=20000):
        dialog.table.itemDoubleClicked.emit(dialog.table.item(0, 0))
    assert dialog.level == "series"
    images = _headers(dialog).index("Images")
    dialog.table.sortItems(images)
    counts = [int(r[images]) for r in _table(dialog)]
    assert counts == [3, 5]
    uids = [r[_headers(dialog).index("Series UID")] for r in _table(dialog)]
    assert {u: c for u, c in zip(uids, counts, strict=True)} == orthanc.series
    qtbot.wait(50)
    dialog.grab().save(str(shots_dir / "pacs-dialog-series.png"))


def test_retrieve_puts_the_series_into_the_browser(qtbot, window, orthanc, shots_dir):
    dialog = window.pacs.show_dialog()
    _choose(dialog, "orthanc")
    assert _search(qtbot, dialog, "series", study_uid=orthanc.study_uid) == 2
    small = next(uid for uid, count in orthanc.series.items() if count == 3)
    column = _headers(dialog).index("Series UID")
    row = next(r for r, cells in enumerate(_table(dialog)) if cells[column] == small)
    dialog.table.selectRow(row)
    assert dialog.retrieve_button.isEnabled()
    assert window.browser.visible_series() == []
    with qtbot.waitSignal(dialog.retrieval_finished, timeout=60000) as blocker:
        dialog.retrieve_button.click()
    (outcome,) = blocker.args[0]
    assert outcome.complete, outcome
    assert outcome.report["received"] == 3
    assert dialog.progress.value() == dialog.progress.maximum() == 3
    assert "all 3 instance(s) retrieved and indexed" in dialog.log.toPlainText()
    qtbot.waitUntil(lambda: window.browser.visible_series() == [small], timeout=5000)
    qtbot.wait(50)
    dialog.grab().save(str(shots_dir / "pacs-dialog-retrieved.png"))


def test_retrieve_a_patient_by_c_move_brings_every_series(qtbot, window, orthanc, settings):
    settings.setValue("pacs/listener_port", orthanc.move_port)
    dialog = window.pacs.show_dialog()
    _choose(dialog, "orthanc")
    assert _search(qtbot, dialog, "patient", patient_name="Doe*") == 1
    dialog.table.selectRow(0)
    dialog.method.setCurrentText("C-MOVE to our listener")
    with qtbot.waitSignal(dialog.retrieval_finished, timeout=60000) as blocker:
        dialog.retrieve_button.click()
    (outcome,) = blocker.args[0]  # the patient's one study
    assert outcome.complete, outcome
    assert outcome.report["method"] == "C-MOVE" and outcome.report["received"] == 8
    assert outcome.target.study_uid == orthanc.study_uid
    qtbot.waitUntil(
        lambda: sorted(window.browser.visible_series()) == sorted(orthanc.series), timeout=5000
    )


def test_a_refused_association_is_said_in_plain_words(qtbot, window, settings, orthanc, tmp_path):
    # A peer that refuses the association outright: a listener that knows no calling AE.
    peer = Listener(tmp_path / "peer-store", "PEER", free_port(), host="127.0.0.1").start()
    try:
        nodes = NodeStore(window.store_dir)
        nodes.add("strict", "PEER", "127.0.0.1", peer.port)
        nodes.close()
        dialog = window.pacs.show_dialog()
        _choose(dialog, "strict")
        assert _search(qtbot, dialog, "study") == -1
    finally:
        peer.stop()
    text = dialog.message.text()
    assert text.startswith("The PACS refused the connection")
    assert f"our AE title '{OUR_AE}'" in text and "'strict'" in text
    assert dialog.table.rowCount() == 0

    # Orthanc accepts the connection from an AE title it does not know, then will not answer.
    settings.setValue("pacs/ae_title", "STRANGER")
    _choose(dialog, "orthanc")
    assert _search(qtbot, dialog, "study") == -1
    text = dialog.message.text()
    assert "would not answer" in text and "'STRANGER'" in text and "'orthanc'" in text
    with qtbot.waitSignal(dialog.retrieval_finished, timeout=60000) as blocker:
        dialog.start_retrieval([Target(orthanc.study_uid, label="Study of Jane Doe", expected=8)])
    (outcome,) = blocker.args[0]
    assert outcome.error and not outcome.complete
    log = dialog.log.toPlainText()
    assert "Study of Jane Doe: not retrieved. The PACS " in log and "'STRANGER'" in log


def test_cancel_stops_a_retrieval_from_a_silent_node(qtbot, window):
    """A node that accepts the connection and never answers: Cancel ends the wait at once."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True).start()
    nodes = NodeStore(window.store_dir)
    nodes.add("silent", "SILENT", "127.0.0.1", silent.getsockname()[1])
    nodes.close()
    dialog = window.pacs.show_dialog()
    _choose(dialog, "silent")
    dialog.start_retrieval([Target("1.2.3.4", label="Study on a silent node", expected=4)])
    qtbot.waitUntil(lambda: bool(accepted), timeout=20000)
    started = time.monotonic()
    with qtbot.waitSignal(dialog.retrieval_finished, timeout=15000) as blocker:
        dialog.cancel_button.click()
    (outcome,) = blocker.args[0]
    assert outcome.cancelled and not outcome.complete
    assert time.monotonic() - started < 10  # the association timeout would be 30 s
    assert "Study on a silent node: cancelled" in dialog.log.toPlainText()
    silent.close()


def test_partial_retrieval_names_what_is_missing():
    report = {
        "expected": 7,
        "received": 4,
        "missing": ["1.2.5", "1.2.6", "1.2.7"],
        "problem": "node 'pacs' stopped during the transfer (association lost)",
        "failed_on_peer": [],
        "rejected": [],
    }
    text = describe_outcome(TargetOutcome(Target("1.2", label="Series CT #2"), report=report))
    assert text.startswith("Series CT #2: incomplete, 4 of 7 instance(s) arrived")
    assert "Missing 3 instance(s): 1.2.5, 1.2.6, 1.2.7." in text
    assert "stopped answering" in text


def test_listener_switch_receives_from_storescu_into_the_browser(qtbot, window, settings, tmp_path):
    storescu = shutil.which("storescu")
    if storescu is None:
        pytest.skip("dcmtk's storescu is not installed (apt-get install dcmtk)")
    pacs = window.pacs
    port = int(settings.value("pacs/listener_port"))
    pacs.listen_action.trigger()  # PACS > Listen for incoming images
    qtbot.waitUntil(lambda: pacs.listener.running, timeout=20000)
    assert f"{OUR_AE} port {port}" in pacs.status_label.text()
    paths = write_ct_series(tmp_path / "send", 3, size=16, series_number=7)
    sent = subprocess.run(
        [storescu, "-aet", "STORESCU", "-aec", OUR_AE, "127.0.0.1", str(port), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        env=DCMTK_ENV,
    )
    assert sent.returncode == 0, sent.stderr
    series_uid = str(dcmread(paths[0]).SeriesInstanceUID)
    qtbot.waitUntil(lambda: series_uid in window.browser.visible_series(), timeout=15000)
    qtbot.waitUntil(lambda: "3 received" in pacs.status_label.text(), timeout=5000)
    window.close()  # stops the listener: the port is free again
    assert not pacs.listener.running
    with socket.socket() as probe:  # nothing listens there any more
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as a listener would
        probe.bind(("0.0.0.0", port))
        probe.listen(1)


@pytest.fixture
def dying_peer(tmp_path):
    """A PACS (pynetdicom) that lists three images, sends one and then drops the connection."""
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import (
        CTImageStorage,
        StudyRootQueryRetrieveInformationModelFind,
        StudyRootQueryRetrieveInformationModelGet,
    )

    datasets = [dcmread(p) for p in write_ct_series(tmp_path / "peer", 3, size=16)]

    def on_find(event):
        query = event.identifier
        level = str(query.QueryRetrieveLevel)
        unique = {"STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID"}.get(level)
        matches = datasets[:1] if unique else datasets  # one study with one series
        for ds in matches:
            match = Dataset()
            for element in query:  # answer every key asked for, from the image
                keyword = element.keyword
                setattr(match, keyword, ds.get(keyword, element.value))
            match.QueryRetrieveLevel = level
            yield 0xFF00, match

    def on_get(event):
        yield len(datasets)
        yield 0xFF00, datasets[0]
        event.assoc.abort()  # the PACS goes away mid-retrieval

    ae = AE("DYING")
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_supported_context(CTImageStorage, scu_role=True, scp_role=True)
    port = free_port()
    server = ae.start_server(
        ("127.0.0.1", port),
        block=False,
        evt_handlers=[(evt.EVT_C_FIND, on_find), (evt.EVT_C_GET, on_get)],
    )
    yield port, datasets
    server.shutdown()


def test_peer_gone_mid_retrieval_names_the_missing_instances(qtbot, window, dying_peer):
    port, datasets = dying_peer
    nodes = NodeStore(window.store_dir)
    nodes.add("dying", "DYING", "127.0.0.1", port)
    nodes.close()
    dialog = window.pacs.show_dialog()
    _choose(dialog, "dying")
    study = str(datasets[0].StudyInstanceUID)
    with qtbot.waitSignal(dialog.retrieval_finished, timeout=60000) as blocker:
        dialog.start_retrieval([Target(study, label="Study from a dying PACS", expected=3)])
    (outcome,) = blocker.args[0]
    assert not outcome.complete
    assert outcome.report["received"] == 1
    log = dialog.log.toPlainText()
    assert "Study from a dying PACS: incomplete, 1 of 3 instance(s) arrived" in log
    missing = [str(ds.SOPInstanceUID) for ds in datasets[1:]]
    assert f"Missing 2 instance(s): {missing[0]}, {missing[1]}." in log
    assert "connection was lost" in log
    assert "incomplete or failed" in dialog.message.text()
    # the one that arrived is whole, indexed and in the browser
    series = str(datasets[0].SeriesInstanceUID)
    qtbot.waitUntil(lambda: window.browser.visible_series() == [series], timeout=5000)
