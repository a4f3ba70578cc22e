"""C-GET through dcmtk's compiled `getscu`, with the workstation's checks, store and index.

pynetdicom moves DIMSE messages between three Python threads under one interpreter lock, which
caps a C-GET at ~230 instances/s even when nothing is done with the objects, against
~900 instances/s for dcmtk's getscu (benchmarks/README.md, PACS). Here getscu does the network
part and writes each object into a private folder inside the store (`files/.incoming/get-...`);
this process then treats each file as the pynetdicom path treats a received object:

1. it is taken only once getscu has logged it as stored (so never a file being written),
2. checked (whole to its last element, pixel data as large as its header says, SOP Instance
   UID as in the file name getscu gave it, study and series UIDs those asked for),
3. renamed into `files/<study>/<series>/<instance>.dcm` (same file system: atomic),
4. indexed in batches (in this thread, while getscu receives the next objects), and reported to
   `progress` as it lands. The check and the index share one walk of the bytes read
   (`fast_header.parse_head`, checked by `receive.view_verdict`), so the file is read and
   parsed once; a file that header cannot be built from is read by the index as usual.

The node's image-level listing (dcmtk's `findscu`, run alongside getscu) names what a partial
retrieval misses. Whatever getscu left that was never logged as stored (a peer or getscu killed
mid-object) is deleted with the private folder, so nothing half-written reaches the store.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import mmap
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from workstation.dicom.fast_header import ClassicHeader, header_from_view, parse_head
from workstation.dicom.net.nodes import Node
from workstation.dicom.net.receive import (
    FILES_DIR,
    INCOMING_DIR,
    Arrival,
    InlineIndexer,
    ReceivedInstance,
    Rejected,
    check_decoded,
    view_verdict,
    walk_verdict,
)
from workstation.dicom.net.scan import scan_file_meta

if TYPE_CHECKING:  # pragma: no cover - types only
    from workstation.dicom.records import InstanceHeader

LOG = logging.getLogger("workstation.pacs")

GETSCU = "getscu"
FINDSCU = "findscu"
GET_FOLDER_PREFIX = "get-"
# Each getscu folder `get-<id>` has a lock file `get-<id>.lock` beside it, held (flock) by the
# retrieving process for the folder's whole life: see claim_get_folder / clean_get_folders.
LOCK_SUFFIX = ".lock"
# getscu's largest receive PDU: fewer, larger PDUs (its default is 16 KiB)
GETSCU_MAX_PDU = 131072
# What is read of each retrieved file to check it and build its index header: its element
# headers sit in the first few KB, the pixel data after them is checked by length against the
# file's size. 16 KiB, as the index's own reader (fast_header.FIRST_READ): 64 KiB cost 0.04 ms
# more per file in copying alone; a longer header is read whole (mapped), then by the index.
HEAD_BYTES = 16 * 1024
# Files per index call while objects still arrive: each call has a fixed cost (the series'
# stacks recounted, a commit) against ~0.07 ms per file written from its header; what is left
# when getscu ends (fewer than this) is indexed at once, so the wait after the last object
# stays short.
INDEX_BATCH = 64

# dcmtk's logger: print only "Stored instance" file names (a debug message of its network
# module; the data set module's debug messages are not even formatted), the final
# sub-operation counts, and warnings or errors: one line each with its level letter, flushed at
# once (so each object is taken as soon as it is stored, not when a pipe buffer fills).
_LOG_CONFIG = """\
log4cplus.rootLogger = DEBUG, out
log4cplus.logger.dcmtk.dcmdata = WARN
log4cplus.appender.out = log4cplus::ConsoleAppender
log4cplus.appender.out.ImmediateFlush = true
log4cplus.appender.out.layout = log4cplus::PatternLayout
log4cplus.appender.out.layout.ConversionPattern = %P: %m%n
log4cplus.appender.out.filters.1 = log4cplus::spi::StringMatchFilter
log4cplus.appender.out.filters.1.StringToMatch = Filename:
log4cplus.appender.out.filters.1.AcceptOnMatch = true
log4cplus.appender.out.filters.2 = log4cplus::spi::StringMatchFilter
log4cplus.appender.out.filters.2.StringToMatch = Number of
log4cplus.appender.out.filters.2.AcceptOnMatch = true
log4cplus.appender.out.filters.3 = log4cplus::spi::LogLevelRangeFilter
log4cplus.appender.out.filters.3.LogLevelMin = WARN
log4cplus.appender.out.filters.3.LogLevelMax = FATAL
log4cplus.appender.out.filters.3.AcceptOnMatch = true
log4cplus.appender.out.filters.4 = log4cplus::spi::DenyAllFilter
"""

# findscu's logger: its final response's status (an INFO line), and warnings or errors
_FIND_LOG_CONFIG = """\
log4cplus.rootLogger = INFO, out
log4cplus.appender.out = log4cplus::ConsoleAppender
log4cplus.appender.out.layout = log4cplus::PatternLayout
log4cplus.appender.out.layout.ConversionPattern = %P: %m%n
log4cplus.appender.out.filters.1 = log4cplus::spi::StringMatchFilter
log4cplus.appender.out.filters.1.StringToMatch = Final Find Response
log4cplus.appender.out.filters.1.AcceptOnMatch = true
log4cplus.appender.out.filters.2 = log4cplus::spi::LogLevelRangeFilter
log4cplus.appender.out.filters.2.LogLevelMin = WARN
log4cplus.appender.out.filters.2.LogLevelMax = FATAL
log4cplus.appender.out.filters.2.AcceptOnMatch = true
log4cplus.appender.out.filters.3 = log4cplus::spi::DenyAllFilter
"""

Progress = Callable[[int, int, str], None]
_SOP_UID_ELEMENT = re.compile(r'<element tag="0008,0018"[^>]*>([^<]*)</element>')


def available() -> bool:
    """Whether dcmtk's getscu and findscu are installed (apt-get install dcmtk)."""
    return dcmtk_tool(GETSCU) is not None and dcmtk_tool(FINDSCU) is not None


def dcmtk_tool(name: str) -> str | None:
    """The first `name` on PATH that is a compiled program, not a script.

    pynetdicom installs Python apps with the same names (getscu, findscu, ...) into the
    environment's bin folder, which often comes first on PATH; their options differ."""
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = shutil.which(name, path=folder or ".")
        if candidate is None:
            continue
        try:
            with open(candidate, "rb") as handle:
                if handle.read(2) != b"#!":
                    return candidate
        except OSError:
            continue
    return None


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


def _dcmtk_env() -> dict[str, str]:
    # dcmtk leaves Nagle's algorithm on unless told: ~40 ms per small DIMSE message otherwise.
    return {**os.environ, "TCP_NODELAY": "1"}


def _peer_arguments(node: Node, ae_title: str) -> list[str]:
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


def _keys(study_uid: str, series_uid: str | None, level: str) -> list[str]:
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
    receiver = _FileReceiver(store_dir, node, study_uid, series_uid, result, indexer)
    receiver.progress = progress
    processes: list[subprocess.Popen] = []
    try:
        listing = _start_listing(work, node, study_uid, series_uid, ae_title)
        processes.append(listing)
        getscu = _start_getscu(work, node, study_uid, series_uid, ae_title)
        processes.append(getscu)
        assert getscu.stdout is not None
        for line in _lines(getscu.stdout.fileno()):
            _read_line(line, result, receiver)
            if receiver.waiting and listing.poll() is not None:
                _finish_listing(listing, work, result)
                receiver.report_waiting()
        result.exit_code = getscu.wait()
        receiver.hand_over(final=True)
        if result.expected is None and not result.listing_problem:
            _finish_listing(listing, work, result)
        receiver.report_waiting()
    finally:
        for process in processes:  # still running only if we were interrupted
            if process.poll() is None:
                process.kill()
                process.wait()
        receiver.hand_over(final=True)  # what is in the store gets indexed, whatever happened
        indexer.close()
        release_get_folder(work, lock)
    return result


def _lines(descriptor: int) -> Iterator[str]:
    """The lines a process writes to a pipe, as they come: whatever one read returns is split
    (a text-mode file object costs a read and a decode per line)."""
    rest = b""
    while chunk := os.read(descriptor, 65536):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            yield line.decode(errors="replace")
    if rest:
        yield rest.decode(errors="replace")


def _tool(name: str) -> str:
    found = dcmtk_tool(name)
    if found is None:
        raise FileNotFoundError(f"dcmtk's {name} is not installed (apt-get install dcmtk)")
    return found


def _hex() -> str:
    return uuid.uuid4().hex[:12]


def _start_listing(
    work: Path, node: Node, study_uid: str, series_uid: str | None, ae_title: str
) -> subprocess.Popen:
    config = work / "findscu-log.cfg"
    config.write_text(_FIND_LOG_CONFIG)
    command = [_tool(FINDSCU), "-lc", str(config), *_peer_arguments(node, ae_title)]
    command += [node.host, str(node.port)]
    command += _keys(study_uid, series_uid, "IMAGE")
    if not series_uid:
        command += ["-k", "SeriesInstanceUID"]
    command += ["-k", "SOPInstanceUID", "-Xs", str(work / "listing.xml")]
    log = open(work / "findscu.log", "wb")  # noqa: SIM115 - closed when the process is done
    try:
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=_dcmtk_env(), cwd=work
        )
    finally:
        log.close()


def _finish_listing(listing: subprocess.Popen, work: Path, result: DcmtkGetResult) -> None:
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
    command = [_tool(GETSCU), "-lc", str(config), *_peer_arguments(node, ae_title)]
    command += ["-pdu", str(GETSCU_MAX_PDU), node.host, str(node.port)]
    command += _keys(study_uid, series_uid, "SERIES" if series_uid else "STUDY")
    command += ["-od", str(work)]
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_dcmtk_env(),
        cwd=work,
    )


_COUNTS = {
    "Remaining": "remaining",
    "Completed": "completed",
    "Failed": "failed",
    "Warning": "warning",
}


def _read_line(line: str, result: DcmtkGetResult, receiver: _FileReceiver) -> None:
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


class _FileReceiver:
    """Check, move into the store, report and queue for indexing one file getscu stored."""

    def __init__(
        self,
        store_dir: Path,
        node: Node,
        study_uid: str,
        series_uid: str | None,
        result: DcmtkGetResult,
        indexer: InlineIndexer,
    ) -> None:
        self.store_dir = store_dir
        self.files_dir = os.path.join(store_dir, FILES_DIR)
        self.sender_ae = node.ae_title  # in a C-GET the node we called sends the objects
        self.study_uid = study_uid
        self.series_uid = series_uid
        self.result = result
        self.indexer = indexer
        self.progress: Progress | None = None
        self.waiting: list[str] = []  # taken, progress not yet reported (listing not done)
        self.pending: list[Arrival] = []  # taken, not yet handed to the indexer
        # (study, series) -> the store folder as named here, and its real path (for the index)
        self._folders: dict[tuple[str, str], tuple[str, str]] = {}

    def take(self, path: str) -> None:
        # getscu names each file <modality>.<SOP Instance UID of the C-STORE request>
        name = os.path.basename(path)
        requested_sop = name.split(".", 1)[1] if "." in name else ""
        try:
            (study, series, sop), stat, _, view = _read_and_check(path, requested_sop)
            if study != self.study_uid or (self.series_uid and series != self.series_uid):
                raise Rejected(0xA900, "the object belongs to another study or series")
            folder, real_folder = self._folder(study, series)
            final = os.path.join(folder, f"{sop}.dcm")
            os.replace(path, final)
        except (Rejected, OSError) as error:
            reason = error.reason if isinstance(error, Rejected) else f"cannot store: {error}"
            LOG.warning("rejected an object retrieved with getscu: %s", reason)
            self.result.rejected.append(reason)
            with contextlib.suppress(OSError):
                os.unlink(path)
            return
        # rename keeps the file's size and mtime: the stat read for the check is the index's
        header = _header(os.path.join(real_folder, f"{sop}.dcm"), stat, view)
        item = ReceivedInstance(Path(final), sop, series, study, self.sender_ae)
        self.result.received.append(item)
        self.result.bytes += stat.st_size
        self.pending.append((item, header))
        if len(self.pending) >= INDEX_BATCH:
            self.hand_over()
        if self.progress is not None:
            self.waiting.append(sop)
            if self.result.expected is not None or self.result.listing_problem:
                self.report_waiting()

    def _folder(self, study: str, series: str) -> tuple[str, str]:
        """The series' folder in the store (made on first use) and its real path."""
        found = self._folders.get((study, series))
        if found is None:
            folder = os.path.join(self.files_dir, study, series)
            os.makedirs(folder, exist_ok=True)
            found = self._folders[(study, series)] = (folder, os.path.realpath(folder))
        return found

    def hand_over(self, final: bool = False) -> None:
        """Index the files taken since the last batch; `final`: getscu has ended."""
        pending, self.pending = self.pending, []
        self.indexer.submit_many(pending, final=final)

    def report_waiting(self) -> None:
        """Progress for objects taken before the node's listing gave the total."""
        expected = len(self.result.expected or ())
        done = len(self.result.received) - len(self.waiting)
        while self.waiting:
            done += 1
            sop = self.waiting.pop(0)
            if self.progress is not None:
                self.progress(done, max(done, expected), sop)


def _header(
    real_path: str, stat: os.stat_result, view: ClassicHeader | None
) -> InstanceHeader | None:
    """The file's InstanceHeader from the header walked for its check, or None: then the index
    reads the file itself (and words its problem, if it has one)."""
    if view is None:
        return None
    try:
        return header_from_view(real_path, stat, view)
    except Exception as error:  # a problem with the file: index_paths records it
        # the type only: a header value in the message could identify the patient
        LOG.debug("header of a retrieved object left to the index (%s)", type(error).__name__)
        return None


def read_and_check(
    path: str | os.PathLike[str], requested_sop: str
) -> tuple[tuple[str, str, str], os.stat_result, bytes]:
    """Check a DICOM file as a received object: its (study, series, instance) UIDs, its stat and
    the first bytes read of it; raises Rejected as the listener would for the same object."""
    verdict, stat, head, _ = _read_and_check(path, requested_sop)
    return verdict, stat, head


def _read_and_check(
    path: str | os.PathLike[str], requested_sop: str
) -> tuple[tuple[str, str, str], os.stat_result, bytes, ClassicHeader | None]:
    """`read_and_check`, and the index reader's walk of the bytes read (None when that reader
    leaves the file to pydicom, or its header runs past them: then the index reads the file).

    Only the file's first HEAD_BYTES are read, and walked once: the index reader's walk
    (`fast_header.parse_head`) also gives the check its verdict (`receive.view_verdict`), the
    pixel data after those bytes held by length to the file's size. A file that walk cannot
    vouch for (or that fails a check) is walked by `receive.walk_verdict` (mapped whole when
    the head is not enough) and, if need be, decoded with pydicom, whose verdicts and messages
    stand."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        stat = os.fstat(descriptor)
        size = stat.st_size
        head = os.read(descriptor, HEAD_BYTES)
        view, verdict = _one_walk(head, size, requested_sop)
        if verdict is None:
            verdict = _file_verdict(head, size, requested_sop)
        if verdict is None and size > len(head):
            with mmap.mmap(descriptor, 0, access=mmap.ACCESS_READ) as mapped:
                verdict = _file_verdict(mapped, size, requested_sop)
    finally:
        os.close(descriptor)
    if verdict is None:
        if size == 0:
            raise Rejected(0xC000, "data set cannot be decoded: the file is empty")
        verdict = check_decoded(Path(path).read_bytes(), requested_sop)
    return verdict, stat, head, view


def _one_walk(
    head: bytes, size: int, requested_sop: str
) -> tuple[ClassicHeader | None, tuple[str, str, str] | None]:
    """The index reader's view of a file's head and the verdict it gives, each None when it
    cannot give one. Whatever goes wrong in it (a header nested deeper than Python recurses)
    leaves the file to the full walk, which has its own limits and words the refusal."""
    try:
        view = parse_head(head, size)
    except Exception:  # the index reads the file itself and records what is wrong
        return None, None
    if view is None:
        return None, None
    try:
        return view, view_verdict(head, view, size, requested_sop)
    except Exception:
        return view, None


def _file_verdict(buffer, size: int, requested_sop: str) -> tuple[str, str, str] | None:
    """`walk_verdict` on a DICOM file's bytes (file meta first), or None when unsure."""
    meta = scan_file_meta(buffer)
    if meta is None:
        return None
    return walk_verdict(
        buffer,
        meta.transfer_syntax,
        requested_sop,
        offset=meta.dataset_offset,
        size=size,
        meta_sop_uid=meta.sop_instance_uid,
    )


def claim_get_folder(incoming: Path) -> tuple[Path, int]:
    """Make a private getscu folder under `incoming`; returns it and the descriptor of its lock.

    The lock file is made and locked (flock) before the folder exists, and stays locked until
    `release_get_folder`, so `clean_get_folders` in any process, on any host sharing the store
    (flock reaches across NFS clients), never deletes a folder a retrieval is writing into."""
    incoming.mkdir(parents=True, exist_ok=True)
    while True:
        name = f"{GET_FOLDER_PREFIX}{_hex()}"
        lock_path = incoming / f"{name}{LOCK_SUFFIX}"
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            # a cleanup may have taken the fresh file's lock first and deleted it: start over
            if os.stat(lock_path).st_ino == os.fstat(descriptor).st_ino:
                work = incoming / name
                work.mkdir()
                return work, descriptor
        except FileNotFoundError:
            pass
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(lock_path)
            os.close(descriptor)
            raise
        os.close(descriptor)


def release_get_folder(work: Path, lock: int) -> None:
    """Delete a claimed getscu folder and its lock file, then let go of the lock."""
    try:
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_lock_path(work))
    finally:
        os.close(lock)


def clean_get_folders(incoming: Path) -> int:
    """Remove getscu folders no live retrieval holds (a killed one's); returns how many.

    A folder is left alone while its lock file is locked by anyone; one whose lock can be taken
    here, or that has no lock file, is a dead retrieval's. Lock files left without a folder go
    too (a retrieval killed between making the two)."""
    removed = 0
    for entry in sorted(incoming.glob(f"{GET_FOLDER_PREFIX}*")):
        if entry.name.endswith(LOCK_SUFFIX):
            if not (incoming / entry.name[: -len(LOCK_SUFFIX)]).exists():
                _remove_if_unlocked(entry, None)
        elif entry.is_dir() and _remove_if_unlocked(_lock_path(entry), entry):
            removed += 1
    return removed


def _lock_path(folder: Path) -> Path:
    return folder.with_name(folder.name + LOCK_SUFFIX)


def _remove_if_unlocked(lock_path: Path, folder: Path | None) -> bool:
    """Delete `folder` (if any) and its lock file unless a live process holds the lock."""
    try:
        descriptor = os.open(lock_path, os.O_RDWR)
    except FileNotFoundError:
        descriptor = None  # no lock file: nobody can be holding this folder
    except OSError as error:
        LOG.warning("cannot check the retrieval folder lock %s: %s", lock_path, error)
        return False
    try:
        if descriptor is not None:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # a retrieval is using it
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        if descriptor is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock_path)
        return True
    finally:
        if descriptor is not None:
            os.close(descriptor)
