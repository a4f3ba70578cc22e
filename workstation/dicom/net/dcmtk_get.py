"""C-GET through dcmtk's compiled `getscu`, with the workstation's checks, store and index.

pynetdicom moves DIMSE messages between three Python threads under one interpreter lock, which
caps a C-GET at ~230 instances/s even when nothing is done with the objects, against
~900 instances/s for dcmtk's getscu (benchmarks/README.md, PACS). Here getscu does the network
part and writes each object into a private folder inside the store (`files/.incoming/get-...`);
this process reads getscu's log and takes each file it names as stored as the pynetdicom path
takes a received object: checked, renamed into the store, indexed in batches while getscu
receives the next objects, reported to `progress` (`dcmtk_files.FileReceiver`, shared with
the C-MOVE destination of `dcmtk_move`).

The node's image-level listing (dcmtk's `findscu`, run alongside getscu) names what a partial
retrieval misses. Whatever getscu left that was never logged as stored (a peer or getscu killed
mid-object) is deleted with the private folder, so nothing half-written reaches the store.
"""

from __future__ import annotations

import fcntl  # noqa: F401 - the folder lock lives in dcmtk_files; tests reach it through here
import logging
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from workstation.dicom.net.dcmtk_files import (
    GET_FOLDER_PREFIX,
    HEAD_BYTES,
    INDEX_BATCH,
    LOCK_SUFFIX,
    FileReceiver,
    Progress,
    ReceivedFiles,
    _read_and_check,
    claim_get_folder,
    clean_get_folders,
    dcmtk_env,
    dcmtk_tool,
    end_transfer,
    lines,
    log_config,
    read_and_check,
    release_get_folder,
    start_logged,
    tool,
)
from workstation.dicom.net.nodes import Node
from workstation.dicom.net.receive import (
    FILES_DIR,
    INCOMING_DIR,
    InlineIndexer,
    ReceivedInstance,
)

__all__ = [  # shared with dcmtk_move, and named here as before
    "GET_FOLDER_PREFIX",
    "HEAD_BYTES",
    "INDEX_BATCH",
    "LOCK_SUFFIX",
    "FileReceiver",
    "_FileReceiver",
    "_read_and_check",
    "claim_get_folder",
    "clean_get_folders",
    "dcmtk_tool",
    "read_and_check",
    "release_get_folder",
]

LOG = logging.getLogger("workstation.pacs")

GETSCU = "getscu"
FINDSCU = "findscu"
# getscu's largest receive PDU: fewer, larger PDUs (its default is 16 KiB)
GETSCU_MAX_PDU = 131072

# getscu's log: only the stored files' names (a debug message of its network module), the final
# sub-operation counts, and warnings or errors, each line flushed at once (so each object is
# taken as soon as it is stored, not when a pipe buffer fills).
_LOG_CONFIG = log_config(("Filename:", "Number of"), flush=True)

# findscu's log: its final response's status (an INFO line), and warnings or errors
_FIND_LOG_CONFIG = log_config(("Final Find Response",), level="INFO")

_SOP_UID_ELEMENT = re.compile(r'<element tag="0008,0018"[^>]*>([^<]*)</element>')


def available() -> bool:
    """Whether dcmtk's getscu and findscu are installed (apt-get install dcmtk)."""
    return dcmtk_tool(GETSCU) is not None and dcmtk_tool(FINDSCU) is not None


@dataclass
class DcmtkGetResult:
    """What the getscu run brought in; `scu.retrieve` turns it into a RetrieveReport."""

    expected: list[str] | None = None  # None: the node's listing failed
    listing_problem: str = ""
    received: list[ReceivedInstance] = field(default_factory=list)
    bytes: int = 0  # the size of the files received
    rejected: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # "completed", "failed", ...
    errors: list[str] = field(default_factory=list)  # getscu's warning and error lines
    exit_code: int = 0


def peer_arguments(node: Node, ae_title: str) -> list[str]:
    return [
        "-S",  # study root information model
        "-aet",
        ae_title,
        "-aec",
        node.ae_title,
        "-to",
        "10",
        "-ta",
        "30",
        "-td",
        "120",
    ]


def retrieve_keys(study_uid: str, series_uid: str | None, level: str) -> list[str]:
    keys = ["-k", f"QueryRetrieveLevel={level}", "-k", f"StudyInstanceUID={study_uid}"]
    if series_uid:
        keys += ["-k", f"SeriesInstanceUID={series_uid}"]
    return keys


def get_study(
    store_dir: Path,
    node: Node,
    study_uid: str,
    series_uid: str | None,
    ae_title: str,
    progress: Progress | None,
    on_received: Callable[[ReceivedInstance], None] | None,
) -> DcmtkGetResult:
    """Run findscu and getscu against the node, checking, storing and indexing what arrives."""
    store_dir = Path(store_dir)
    incoming = store_dir / FILES_DIR / INCOMING_DIR
    if incoming.is_dir():
        clean_get_folders(incoming)  # left by a retrieval whose process was killed
    work, lock = claim_get_folder(incoming)
    result = DcmtkGetResult()
    # batches are formed here (see _FileReceiver.take) and indexed in this thread as they come
    indexer = InlineIndexer(store_dir, on_received)
    receiver = FileReceiver(store_dir, node, study_uid, series_uid, result, indexer, work)
    receiver.progress = progress
    processes: list[subprocess.Popen] = []
    try:
        listing = start_listing(work, node, study_uid, series_uid, ae_title)
        processes.append(listing)
        getscu = _start_getscu(work, node, study_uid, series_uid, ae_title)
        processes.append(getscu)
        assert getscu.stdout is not None
        for line in lines(getscu.stdout.fileno()):
            _read_line(line, result, receiver)
            if receiver.waiting and listing.poll() is not None:
                finish_listing(listing, work, result)
                receiver.report_waiting()
        result.exit_code = getscu.wait()
        receiver.hand_over(final=True)
        if result.expected is None and not result.listing_problem:
            finish_listing(listing, work, result)
        receiver.report_waiting()
    finally:
        end_transfer(processes, receiver, indexer, work, lock)
    return result


def start_listing(
    work: Path, node: Node, study_uid: str, series_uid: str | None, ae_title: str
) -> subprocess.Popen:
    config = work / "findscu-log.cfg"
    config.write_text(_FIND_LOG_CONFIG)
    command = [tool(FINDSCU), "-lc", str(config), *peer_arguments(node, ae_title)]
    command += [node.host, str(node.port)]
    command += retrieve_keys(study_uid, series_uid, "IMAGE")
    if not series_uid:
        command += ["-k", "SeriesInstanceUID"]
    command += ["-k", "SOPInstanceUID", "-Xs", str(work / "listing.xml")]
    return start_logged(command, work, "findscu.log")


def finish_listing(listing: subprocess.Popen, work: Path, result: ReceivedFiles) -> None:
    """Wait for findscu and read the SOP Instance UIDs it listed (or why it could not)."""
    try:
        listing.wait(timeout=150)
    except subprocess.TimeoutExpired:
        listing.kill()
        listing.wait()
        result.listing_problem = "the node did not finish listing the instances"
        return
    log = (work / "findscu.log").read_text(errors="replace").splitlines()
    errors = [line[3:] for line in log if line[:2] in ("E:", "F:")]
    final = [line[3:].strip() for line in log if "Final Find Response" in line]
    if final and "(Success)" not in final[-1]:
        errors.append(final[-1])  # e.g. "Received Final Find Response (Error: ...)"
    try:
        listing_xml = (work / "listing.xml").read_text(errors="replace")
    except OSError:
        listing_xml = None
    if errors or not final or listing_xml is None or listing.returncode != 0:
        result.listing_problem = _last_error(errors) or "the node's listing could not be read"
        return
    # findscu's XML has one <element tag="0008,0018" ...>UID</element> per answer (UIDs hold
    # only digits and dots); a pattern reads 400 of them in ~1 ms, an XML parser in ~30 ms.
    listed = (uid.strip() for uid in _SOP_UID_ELEMENT.findall(listing_xml))
    result.expected = [uid for uid in listed if uid]


def _last_error(errors: list[str]) -> str:
    meaningful = [e.strip() for e in errors if e.strip() and not e.lstrip().startswith(("#", "("))]
    return meaningful[-1] if meaningful else ""


def _start_getscu(
    work: Path, node: Node, study_uid: str, series_uid: str | None, ae_title: str
) -> subprocess.Popen:
    config = work / "getscu-log.cfg"
    config.write_text(_LOG_CONFIG)
    command = [tool(GETSCU), "-lc", str(config), *peer_arguments(node, ae_title)]
    command += ["-pdu", str(GETSCU_MAX_PDU), node.host, str(node.port)]
    command += retrieve_keys(study_uid, series_uid, "SERIES" if series_uid else "STUDY")
    command += ["-od", str(work)]
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=dcmtk_env(),
        cwd=work,
    )


_COUNTS = {
    "Remaining": "remaining",
    "Completed": "completed",
    "Failed": "failed",
    "Warning": "warning",
}


def _read_line(line: str, result: DcmtkGetResult, receiver: FileReceiver) -> None:
    level, _, message = line.partition(": ")
    message = message.strip()
    if message.startswith("Filename:"):
        receiver.take(message[len("Filename:") :].strip())
    elif message.startswith("Number of ") and ":" in message:
        words, _, number = message.partition(":")
        kind = _COUNTS.get(words.split()[2] if len(words.split()) > 2 else "")
        if kind and number.strip().isdigit():
            result.counts[kind] = int(number)
    elif level in ("W", "E", "F") and message:
        result.errors.append(message)


_FileReceiver = FileReceiver  # the name the tests use
