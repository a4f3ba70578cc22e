"""C-MOVE through dcmtk's compiled programs: `movescu` asks, `storescp` receives, for the length
of one retrieval.

A C-MOVE asks the node to open an association of its own back to us and C-STORE the objects.
Received by a pynetdicom listener that caps it at ~100 instances/s (DIMSE messages handed
between Python threads under one interpreter lock); storescp receives the same study at
400-800 (benchmarks/README.md, PACS). Here storescp listens on our port, writing each object
into a private folder inside the store (`files/.incoming/get-...`, as getscu does for C-GET),
movescu sends the request (its log gives the node's final status, sub-operation counts and
failed instances) and findscu lists the study alongside; this thread reads storescp's log and
takes each file as `dcmtk_files.FileReceiver` takes getscu's: checked, renamed into the store,
indexed in batches, reported to `progress`.

storescp logs "storing DICOM file: X" *before* writing X, so a file is taken only once storescp
has moved on: its next request, the association's end, or the node's final C-MOVE response
(which comes after storescp's answer to the last object, sent once that object is written). An
object cut off by a dying peer is never written; one storescp was still writing when the node
vanished, and anything else never vouched for, is deleted with the private folder. storescp
names files <modality>.<SOP Instance UID of the request>, unusual characters of the UID (path
separators among them) replaced by "_" (dcmtk 3.6.7); still, a logged path that is not directly
in the private folder is refused without being touched (`FileReceiver`).

storescp accepts an association from any caller (it has no option to restrict them): its log
names each association's calling and called AE titles, and objects from a caller that is not a
registered node, or addressed to another AE title than ours, are refused here (deleted, never
stored), as the listener would refuse the association. Whatever is taken must also belong to
the study (and series) asked for. storescp listens on every address of this computer.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from workstation.dicom.net import dcmtk_get
from workstation.dicom.net.dcmtk_files import (
    FileReceiver,
    Progress,
    claim_get_folder,
    clean_get_folders,
    dcmtk_env,
    dcmtk_tool,
    end_transfer,
    log_config,
    start_logged,
    tool,
)
from workstation.dicom.net.nodes import Node, NodeStore
from workstation.dicom.net.receive import (
    FILES_DIR,
    INCOMING_DIR,
    InlineIndexer,
    ReceivedInstance,
)

LOG = logging.getLogger("workstation.pacs")

STORESCP = "storescp"
MOVESCU = "movescu"
# storescp's largest receive PDU (its default is 16 KiB), as getscu's for C-GET
STORESCP_MAX_PDU = 131072
# how long storescp may take to start listening, and, after the node's last C-MOVE response,
# to finish the object it was writing when the node went away
START_SECONDS = 5.0
SETTLE_SECONDS = 2.0

_LOGGED = (
    "storing DICOM file:",
    "Received Store Request",
    "Association Received",
    "Association Release",
    "Association Aborted",
    "Calling Application Name:",
    "Called Application Name:",
)


# movescu's log: the request going out, the final response (its status, sub-operation counts
# and failed instances: a debug dump of the message and its data set), and warnings and errors;
# the pending responses' dumps (one per object) are left out.
_MOVE_LOG_CONFIG = log_config(("Move R", "C-MOVE RSP", "(0008,0058)"), deny=("Pending",))

# storescp's log: the file it is about to write, each request and association event, the calling
# and called AE titles of each association (debug lines of its network module), and warnings and
# errors, flushed at once. DIMSE message dumps are denied first: they print the peer's UIDs,
# which must never be read as lines of storescp's own (a UID is not a file name, an AE title or
# an event).
_STORESCP_LOG_CONFIG = log_config(_LOGGED, deny=("DIMSE MESSAGE",), flush=True)


def available() -> bool:
    """Whether dcmtk's storescp, movescu and findscu are installed (apt-get install dcmtk)."""
    tools = (STORESCP, MOVESCU, dcmtk_get.FINDSCU)
    return all(dcmtk_tool(name) is not None for name in tools)


@dataclass
class DcmtkMoveResult:
    """What storescp brought in; `scu.retrieve` puts it into the RetrieveReport."""

    expected: list[str] | None = None
    listing_problem: str = ""
    received: list[ReceivedInstance] = field(default_factory=list)
    bytes: int = 0
    rejected: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # storescp's warning and error lines
    move: MoveOutcome = field(default_factory=lambda: MoveOutcome())


class PortBusy(Exception):
    """storescp cannot listen on the port (a running listener holds it)."""


def move_into_store(
    store_dir: Path,
    node: Node,
    study_uid: str,
    series_uid: str | None,
    ae_title: str,
    port: int,
    progress: Progress | None = None,
    on_received: Callable[[ReceivedInstance], None] | None = None,
) -> DcmtkMoveResult:
    """C-MOVE the study (or series) from the node to our AE title with dcmtk's movescu, receive
    it through storescp on `port`, and list the study's instances (dcmtk's findscu, alongside)
    to name what did not arrive. The node's answer is in `result.move`. Raises PortBusy, before
    anything is sent to the node, when storescp cannot listen on the port."""
    store_dir = Path(store_dir)
    incoming = store_dir / FILES_DIR / INCOMING_DIR
    if incoming.is_dir():
        clean_get_folders(incoming)  # left by a retrieval whose process was killed
    if not _port_free(port):
        raise PortBusy(f"port {port} is in use")
    work, lock = claim_get_folder(incoming)
    result = DcmtkMoveResult()
    indexer = InlineIndexer(store_dir, on_received)
    receiver = FileReceiver(
        store_dir, node, study_uid, series_uid, result, indexer, work, program=STORESCP
    )
    receiver.progress = progress
    nodes = NodeStore(store_dir)
    try:
        senders = nodes.ae_titles()
    finally:
        nodes.close()
    log = _StorescpLog(receiver, result, senders, ae_title)
    processes: list[subprocess.Popen] = []
    try:
        storescp = _start_storescp(work, ae_title, port)
        processes.append(storescp)
        _wait_listening(storescp, port, log)
        listing = dcmtk_get.start_listing(work, node, study_uid, series_uid, ae_title)
        processes.append(listing)
        log.listing = (listing, work)
        movescu = _start_movescu(work, node, study_uid, series_uid, ae_title)
        processes.append(movescu)
        _receive_while(movescu, storescp, log)
        result.move = _read_move_log(work)
        log.settle(storescp, result.move.answered)
        storescp.terminate()
        log.read_all(storescp)
        storescp.wait()
        receiver.hand_over(final=True)
        if result.expected is None and not result.listing_problem:
            dcmtk_get.finish_listing(listing, work, result)
        receiver.report_waiting()
    finally:
        end_transfer(processes, receiver, indexer, work, lock)
    return result


def _port_free(port: int) -> bool:
    """Whether a listening socket could be bound to the port on every address now."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as storescp binds
        probe.bind(("", port))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def _start_storescp(work: Path, ae_title: str, port: int) -> subprocess.Popen:
    config = work / "storescp-log.cfg"
    config.write_text(_STORESCP_LOG_CONFIG)
    command = [tool(STORESCP), "-lc", str(config), "-aet", ae_title]
    command += ["-pdu", str(STORESCP_MAX_PDU), "+xa", "-dhl", "-ta", "30", "-td", "120"]
    command += ["-od", str(work), str(port)]  # default file names: <modality>.<SOP Instance UID>
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=dcmtk_env(),
        cwd=work,
    )


def _wait_listening(storescp: subprocess.Popen, port: int, log: _StorescpLog) -> None:
    """Return once storescp listens on the port; PortBusy when it gave up (port taken)."""
    deadline = time.monotonic() + START_SECONDS
    while _port_free(port):  # our probe binds with SO_REUSEADDR: it never blocks storescp's
        if storescp.poll() is not None or time.monotonic() > deadline:
            log.read_all(storescp)
            why = log.result.errors[-1] if log.result.errors else "it did not start"
            raise PortBusy(f"storescp cannot listen on port {port}: {why}")
        time.sleep(0.01)


def _receive_while(
    movescu: subprocess.Popen, storescp: subprocess.Popen, log: _StorescpLog
) -> None:
    """Take what storescp stores until movescu has the node's last answer (or gave up)."""
    assert storescp.stdout is not None
    descriptor = storescp.stdout.fileno()
    while movescu.poll() is None:
        readable, _, _ = select.select([descriptor], [], [], 0.05)
        if readable and not log.feed(os.read(descriptor, 65536)):
            break  # storescp ended (killed from outside)
    movescu.wait()


def _start_movescu(
    work: Path, node: Node, study_uid: str, series_uid: str | None, ae_title: str
) -> subprocess.Popen:
    config = work / "movescu-log.cfg"
    config.write_text(_MOVE_LOG_CONFIG)
    command = [tool(MOVESCU), "-lc", str(config), *dcmtk_get.peer_arguments(node, ae_title)]
    command += ["-aem", ae_title, node.host, str(node.port)]
    command += dcmtk_get.retrieve_keys(study_uid, series_uid, "SERIES" if series_uid else "STUDY")
    return start_logged(command, work, "movescu.log")


@dataclass
class MoveOutcome:
    """The node's answer to the C-MOVE, as movescu logged it."""

    sent: bool = False  # the node accepted the association and the request went out
    answered: bool = False  # its final response arrived
    status: int | None = None  # the final response's status
    completed: int | None = None  # its count of completed sub-operations
    failed: list[str] = field(default_factory=list)  # its Failed SOP Instance UID List
    errors: list[str] = field(default_factory=list)  # movescu's warning and error lines


def _read_move_log(work: Path) -> MoveOutcome:
    outcome = MoveOutcome()
    try:
        text = (work / "movescu.log").read_text(errors="replace")
    except OSError:
        return outcome
    final = False
    for line in text.splitlines():
        level, _, message = line.partition(": ")
        message = message.strip()
        if message.startswith("Sending Move Request"):
            outcome.sent = True
        elif message.startswith("Received Final Move Response"):
            final = outcome.answered = True
        elif final and message.startswith("DIMSE Status") and ": 0x" in message:
            code = message.split(": 0x", 1)[1][:4]
            with contextlib.suppress(ValueError):
                outcome.status = int(code, 16)
        elif final and message.startswith("Completed Suboperations"):
            number = message.rpartition(":")[2].strip()
            outcome.completed = int(number) if number.isdigit() else None
        elif final and message.startswith("(0008,0058)") and "[" in message:
            listed = message.split("[", 1)[1].rsplit("]", 1)[0]
            outcome.failed += [uid for uid in listed.split("\\") if uid]
        elif level in ("W", "E", "F") and message:
            outcome.errors.append(message)
    return outcome


class _StorescpLog:
    """storescp's log, line by line: which file is written, by whom, and when it is done."""

    def __init__(
        self, receiver: FileReceiver, result: DcmtkMoveResult, senders: set[str], ae_title: str
    ) -> None:
        self.receiver = receiver
        self.result = result
        self.senders = senders
        self.ae_title = ae_title
        self.calling = ""
        self.called = ""
        self.listing: tuple[subprocess.Popen, Path] | None = None  # findscu, its folder
        self.pending: str | None = None  # named by storescp, maybe still being written
        self._pending_from = ("", "")  # its association's calling and called AE titles
        self._rest = b""

    def feed(self, chunk: bytes) -> bool:
        """Take in what storescp wrote; False at its end."""
        if not chunk:
            if self._rest:
                self._line(self._rest.decode(errors="replace"))
                self._rest = b""
            return False
        lines = (self._rest + chunk).split(b"\n")
        self._rest = lines.pop()
        for line in lines:
            self._line(line.decode(errors="replace"))
        return True

    def read_all(self, storescp: subprocess.Popen) -> None:
        """Read what is left of the log, up to storescp's end."""
        assert storescp.stdout is not None
        while self.feed(os.read(storescp.stdout.fileno(), 65536)):
            pass

    def settle(self, storescp: subprocess.Popen, answered: bool) -> None:
        """After the C-MOVE: read what storescp has logged so far and decide the last file.

        If the node answered to the end, it had storescp's answer to every object it sent, so
        the last one named is written; if it went away, wait (briefly) for storescp to move on
        from the object it was writing, else leave that object out."""
        assert storescp.stdout is not None
        descriptor = storescp.stdout.fileno()
        deadline = time.monotonic() + (0.0 if answered else SETTLE_SECONDS)
        while True:
            readable, _, _ = select.select([descriptor], [], [], 0.02)
            if readable:
                if not self.feed(os.read(descriptor, 65536)):
                    return
                continue
            if self.pending is None or time.monotonic() >= deadline:
                break
        if self.pending is not None and answered:
            self._done()
        self.pending = None  # not vouched for: deleted with the private folder

    def _line(self, line: str) -> None:
        level, _, message = line.partition(": ")
        message = message.strip()
        if message.startswith("storing DICOM file:"):
            self._done()
            self.pending = message[len("storing DICOM file:") :].strip()
            self._pending_from = (self.calling, self.called)
        elif message.startswith("Calling Application Name:"):
            self.calling = message.partition(":")[2].strip()
        elif message.startswith("Called Application Name:"):
            self.called = message.partition(":")[2].strip()
        elif message.startswith(("Received Store Request", "Association ")):
            self._done()  # storescp moved on: the file it named before is written
            if message.startswith("Association Received"):
                self.calling = self.called = ""
        elif level in ("W", "E", "F") and message:
            if message.startswith("cannot write DICOM file") and self.pending is not None:
                self.receiver.refuse(f"storescp could not write it: {message}", self.pending)
                self.pending = None
            self.result.errors.append(message)

    def _done(self) -> None:
        """The pending file is written: refuse it (wrong caller) or take it."""
        path, self.pending = self.pending, None
        if path is None:
            return
        calling, called = self._pending_from
        if called != self.ae_title:
            self.receiver.refuse(f"sent to AE title {called!r}, not ours ({self.ae_title!r})")
            self._unlink_in_folder(path)
        elif calling not in self.senders:
            self.receiver.refuse(f"sent by AE title {calling!r}, which is not a registered node")
            self._unlink_in_folder(path)
        else:
            self.receiver.sender_ae = calling
            self.receiver.take(path)
            if self.receiver.waiting and self.listing and self.listing[0].poll() is not None:
                dcmtk_get.finish_listing(*self.listing, self.result)
                self.receiver.report_waiting()

    def _unlink_in_folder(self, path: str) -> None:
        folder = self.receiver.folder
        if folder and os.path.realpath(os.path.dirname(os.path.abspath(path))) == folder:
            with contextlib.suppress(OSError):
                os.unlink(path)
