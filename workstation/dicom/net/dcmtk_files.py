"""What dcmtk's receiving programs (getscu for C-GET, storescp for C-MOVE) write, taken into
the store as the workstation's own listener takes an object.

Each program writes into a private folder inside the store (`files/.incoming/get-...`, locked
for its whole life so a cleanup elsewhere never deletes it) and names each stored file in its
log. `FileReceiver.take` then treats the file as a received object:

1. it is taken only once the program has logged it as stored (so never a file being written),
   and only if the named path lies directly in the private folder,
2. checked (whole to its last element, pixel data as large as its header says, SOP Instance
   UID as in the file name the program gave it, study and series UIDs those asked for),
3. renamed into `files/<study>/<series>/<instance>.dcm` (same file system: atomic),
4. indexed in batches (in the reading thread, while the program receives the next objects), and
   reported to `progress` as it lands. The check and the index share one walk of the bytes read
   (`fast_header.parse_head`, checked by `receive.view_verdict`), so the file is read and
   parsed once; a file that header cannot be built from is read by the index as usual.

Whatever the program left that was never logged as stored (a peer or the program killed
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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from workstation.dicom.fast_header import ClassicHeader, header_from_view, parse_head
from workstation.dicom.net.nodes import Node
from workstation.dicom.net.receive import (
    FILES_DIR,
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

GET_FOLDER_PREFIX = "get-"
# Each private folder `get-<id>` (getscu's or storescp's) has a lock file `get-<id>.lock`
# beside it, held (flock) by the retrieving process for the folder's whole life: see
# claim_get_folder / clean_get_folders.
LOCK_SUFFIX = ".lock"
# What is read of each retrieved file to check it and build its index header: its element
# headers sit in the first few KB, the pixel data after them is checked by length against the
# file's size. 16 KiB, as the index's own reader (fast_header.FIRST_READ): 64 KiB cost 0.04 ms
# more per file in copying alone; a longer header is read whole (mapped), then by the index.
HEAD_BYTES = 16 * 1024
# Files per index call while objects still arrive: each call has a fixed cost (the series'
# stacks recounted, a commit) against ~0.07 ms per file written from its header; what is left
# when the program ends (fewer than this) is indexed at once, so the wait after the last object
# stays short.
INDEX_BATCH = 64

Progress = Callable[[int, int, str], None]
# the names dcmtk gives stored files: <modality>.<SOP Instance UID>, unusual characters of the
# UID replaced by "_" (dcmtk 3.6.7 and later)
_DCMTK_FILE_NAME = re.compile(r"[A-Za-z0-9]+\.[A-Za-z0-9._-]+")


class ReceivedFiles(Protocol):
    """Where FileReceiver records what it took (dcmtk_get's and dcmtk_move's results)."""

    expected: list[str] | None
    listing_problem: str
    received: list[ReceivedInstance]
    bytes: int
    rejected: list[str]


def log_config(
    accept: Sequence[str],
    *,
    deny: Sequence[str] = (),
    level: str = "DEBUG",
    flush: bool = False,
) -> str:
    """A log4cplus configuration for a dcmtk tool's stderr that the workstation reads line by
    line: lines containing a `deny` text are dropped, then lines containing an `accept` text
    and all warnings and errors are printed (each with its level letter), the rest dropped.
    The data set module stays at WARN (its debug messages are not even formatted); `flush`
    writes each line at once, so a file is taken as soon as the tool names it."""
    prefix = "log4cplus.appender.out"
    lines = [
        f"log4cplus.rootLogger = {level}, out",
        "log4cplus.logger.dcmtk.dcmdata = WARN",
        f"{prefix} = log4cplus::ConsoleAppender",
        *([f"{prefix}.ImmediateFlush = true"] if flush else []),
        f"{prefix}.layout = log4cplus::PatternLayout",
        f"{prefix}.layout.ConversionPattern = %P: %m%n",
    ]
    rules = [(text, "false") for text in deny] + [(text, "true") for text in accept]
    for number, (text, accepted) in enumerate(rules, start=1):
        lines += [
            f"{prefix}.filters.{number} = log4cplus::spi::StringMatchFilter",
            f"{prefix}.filters.{number}.StringToMatch = {text}",
            f"{prefix}.filters.{number}.AcceptOnMatch = {accepted}",
        ]
    warnings, last = len(rules) + 1, len(rules) + 2
    lines += [
        f"{prefix}.filters.{warnings} = log4cplus::spi::LogLevelRangeFilter",
        f"{prefix}.filters.{warnings}.LogLevelMin = WARN",
        f"{prefix}.filters.{warnings}.LogLevelMax = FATAL",
        f"{prefix}.filters.{warnings}.AcceptOnMatch = true",
        f"{prefix}.filters.{last} = log4cplus::spi::DenyAllFilter",
    ]
    return "\n".join(lines) + "\n"


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


def dcmtk_env() -> dict[str, str]:
    # dcmtk leaves Nagle's algorithm on unless told: ~40 ms per small DIMSE message otherwise.
    return {**os.environ, "TCP_NODELAY": "1"}


def lines(descriptor: int) -> Iterator[str]:
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


def tool(name: str) -> str:
    found = dcmtk_tool(name)
    if found is None:
        raise FileNotFoundError(f"dcmtk's {name} is not installed (apt-get install dcmtk)")
    return found


def _hex() -> str:
    return uuid.uuid4().hex[:12]


class FileReceiver:
    """Check, move into the store, report and queue for indexing each file a dcmtk program stored.

    `folder`: the program's private folder; a logged path that does not lie directly in it is
    refused without being touched (a program tricked into writing elsewhere must not make us
    move or delete a file outside). `sender_ae` is recorded with each object: in a C-GET the
    node we called sends them; a C-MOVE's destination sets it per association."""

    def __init__(
        self,
        store_dir: Path,
        node: Node,
        study_uid: str,
        series_uid: str | None,
        result: ReceivedFiles,
        indexer: InlineIndexer,
        folder: Path | None = None,
        program: str = "getscu",
    ) -> None:
        self.store_dir = store_dir
        self.files_dir = os.path.join(store_dir, FILES_DIR)
        self.sender_ae = node.ae_title
        self.study_uid = study_uid
        self.series_uid = series_uid
        self.result = result
        self.indexer = indexer
        self.folder = os.path.realpath(folder) if folder is not None else None
        self.program = program
        self.progress: Progress | None = None
        self.waiting: list[str] = []  # taken, progress not yet reported (listing not done)
        self.pending: list[Arrival] = []  # taken, not yet handed to the indexer
        # (study, series) -> the store folder as named here, and its real path (for the index)
        self._folders: dict[tuple[str, str], tuple[str, str]] = {}

    def take(self, path: str) -> None:
        # dcmtk names each file <modality>.<SOP Instance UID of the C-STORE request>
        name = os.path.basename(path)
        if not self._in_folder(path, name):
            self.refuse(f"{self.program} named a file outside its folder: {path!r}")
            return
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
            self.refuse(reason, path)
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

    def refuse(self, reason: str, path: str | None = None) -> None:
        """Record a refused object (and delete its file, when it lies in the private folder)."""
        LOG.warning("rejected an object retrieved with %s: %s", self.program, reason)
        self.result.rejected.append(reason)
        if path is not None:
            with contextlib.suppress(OSError):
                os.unlink(path)

    def _in_folder(self, path: str, name: str) -> bool:
        """Whether `path` names a file directly in the private folder, by dcmtk's naming."""
        if self.folder is None:
            return True
        if not _DCMTK_FILE_NAME.fullmatch(name):
            return False
        return os.path.realpath(os.path.dirname(os.path.abspath(path))) == self.folder

    def _folder(self, study: str, series: str) -> tuple[str, str]:
        """The series' folder in the store (made on first use) and its real path."""
        found = self._folders.get((study, series))
        if found is None:
            folder = os.path.join(self.files_dir, study, series)
            os.makedirs(folder, exist_ok=True)
            found = self._folders[(study, series)] = (folder, os.path.realpath(folder))
        return found

    def hand_over(self, final: bool = False) -> None:
        """Index the files taken since the last batch; `final`: the program has ended."""
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


def start_logged(command: list[str], work: Path, log_name: str) -> subprocess.Popen:
    """Start a dcmtk tool in `work` with its output in `work`/`log_name`, read once it ends."""
    log = open(work / log_name, "wb")  # noqa: SIM115 - the child holds it; ours closes at once
    try:
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=dcmtk_env(), cwd=work
        )
    finally:
        log.close()


def end_transfer(
    processes: Sequence[subprocess.Popen],
    receiver: FileReceiver,
    indexer: Any,
    work: Path,
    lock: int,
) -> None:
    """However a retrieval ended: the dcmtk tools still running (only if something went wrong)
    killed, what is in the store indexed, the private folder released."""
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()
    receiver.hand_over(final=True)
    indexer.close()
    release_get_folder(work, lock)


def claim_get_folder(incoming: Path) -> tuple[Path, int]:
    """Make a private folder (getscu's or storescp's) under `incoming`; returns it and the
    descriptor of its lock.

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
    """Delete a claimed private folder and its lock file, then let go of the lock."""
    try:
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_lock_path(work))
    finally:
        os.close(lock)


def clean_get_folders(incoming: Path) -> int:
    """Remove private folders no live retrieval holds (a killed one's); returns how many.

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
