"""Index folders of DICOM files into the store: headers only, incremental, parallel, crash-safe.

How it works, and the promises a user relies on:

* Every file under the given paths is looked at once per run. A file whose path, size and mtime
  match what the store remembers is skipped, whether it was good or bad last time.
* Headers are parsed in parallel for large folders (a process pool: parsing is pure Python, so
  threads do not help; smaller runs parse in-process, see PARALLEL_THRESHOLD). Results are
  written in batches, one transaction per batch, so killing the process at any moment leaves the
  last committed batch and a consistent store; running again completes it.
* Files that were indexed under a given folder and no longer exist there are removed from the
  store and reported (with ``--copy`` the store's own copy stays: only the source link is dropped).
* A bad file never stops the rest: it is recorded as a problem with its path and reason, and its
  problems are cleared once it is fixed and indexed again.
* Duplicate SOP Instance UIDs: the copy already in the store wins (within one run, the first path
  in sorted order); later copies are recorded as problems naming the file that is used. If the
  winning file disappears, its duplicates are read again and one of them takes over.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from workstation.dicom.headers import read_header
from workstation.dicom.index_schema import AREA, INSERT_FRAME_SQL
from workstation.dicom.index_series import now_text, refresh_series, series_frames, split_stacks
from workstation.dicom.index_write import (
    COPY_FOLDER,
    BatchDescriptions,
    InstanceRows,
    delete_instance,
    instance_rows,
    record_problem,
    write_batch,
)
from workstation.dicom.records import DicomProblem, InstanceHeader
from workstation.store.database import Database, open_database

Progress = Callable[[int, int], None]

# Files per transaction: large enough that commits are cheap, small enough that a kill loses little.
BATCH_SIZE = 200
# Below this many files to parse, a process pool costs more than it saves: the classic-file
# parser (fast_header) reads ~2000 headers/s in one process, so a pool's start-up, pickling and
# pipe traffic only pay off on large folders with idle cores (benchmarks/README.md, "Index").
PARALLEL_THRESHOLD = 1000


@dataclass
class IndexSummary:
    """What one `index_paths` run did."""

    files_seen: int = 0
    skipped_unchanged: int = 0
    instances_added: int = 0
    instances_updated: int = 0
    series_touched: set[str] = field(default_factory=set)
    problems: int = 0
    removed: list[str] = field(default_factory=list)

    @property
    def series(self) -> int:
        return len(self.series_touched)

    def line(self) -> str:
        """The one-line summary the CLI prints."""
        text = (
            f"{self.files_seen} files seen, {self.instances_added} instances added, "
            f"{self.instances_updated} updated, {self.skipped_unchanged} unchanged, "
            f"{self.series} series, {self.problems} problems"
        )
        if self.removed:
            text += f", {len(self.removed)} removed"
        return text

    def as_dict(self) -> dict:
        return {
            "files_seen": self.files_seen,
            "skipped_unchanged": self.skipped_unchanged,
            "instances_added": self.instances_added,
            "instances_updated": self.instances_updated,
            "series": sorted(self.series_touched),
            "problems": self.problems,
            "removed": list(self.removed),
        }


class _FileStat(NamedTuple):
    path: str
    size: int
    mtime_ns: int


class _Parsed(NamedTuple):
    """A worker's answer for one file: its rows, or the reason it could not be read.

    Named tuples, not dataclasses: every result crosses the process pool's pipe."""

    stat: _FileStat
    header: InstanceRows | None = None
    reason: str = ""


def open_index(store_dir: str | os.PathLike[str]) -> Database:
    """The store database with the dicom area's schema (registered by index_schema) up to date."""
    return open_database(Path(store_dir), AREA)


def index_paths(
    store_dir: str | os.PathLike[str],
    paths: Sequence[str | os.PathLike[str]],
    copy: bool = False,
    progress: Progress | None = None,
) -> IndexSummary:
    """Index every file under `paths` into the store at `store_dir`; see the module docstring.

    `progress(done, total)` is called as files are processed. Raises FileNotFoundError, before
    changing anything, when one of `paths` does not exist.
    """
    roots = [os.path.realpath(os.fspath(p)) for p in paths]
    for root, given in zip(roots, paths):
        if not os.path.exists(root):
            raise FileNotFoundError(f"{given}: no such file or folder")
    store_dir = Path(store_dir)
    # The store's own database and copies are never indexed as sources.
    unlistable: dict[str, str] = {}
    files = _walk(roots, exclude=os.path.realpath(store_dir), unlistable=unlistable)
    summary = IndexSummary(files_seen=len(files))
    db = open_index(store_dir)
    try:
        with db.transaction() as conn:
            seen = {f.path for f in files}
            summary.removed = _remove_vanished(conn, roots, seen, unlistable, summary)
            _record_unlistable(conn, roots, unlistable, summary)
        todo = _files_to_read(db, files, copy)
        summary.skipped_unchanged = len(files) - len(todo)
        total = len(files)
        done = summary.skipped_unchanged
        if progress:
            progress(done, total)
        batch: list[_Parsed] = []
        for parsed in _parse_all(todo):
            batch.append(parsed)
            if len(batch) >= BATCH_SIZE:
                write_batch(db, batch, summary, copy, store_dir)
                batch = []
            done += 1
            if progress:
                progress(done, total)
        if batch:
            write_batch(db, batch, summary, copy, store_dir)
        summary.problems += _series_problem_count(db, summary.series_touched)
    finally:
        db.close()
    return summary


def index_headers(
    store_dir: str | os.PathLike[str],
    headers: Sequence[InstanceHeader],
    database: Database | None = None,
) -> IndexSummary:
    """Index files whose headers the caller has just read, without reading the files again.

    For receive paths that already hold each object's first bytes: they build the header from
    them (`fast_header.header_from_head`, the same InstanceHeader `read_header` returns) and the
    index writes exactly the rows `index_paths` would write for those files. Each header's
    `path` must be the file's real absolute path (`os.path.realpath`, as `index_paths` stores
    it), and `size` / `mtime_ns` its `os.stat` values, so that a later `index_paths` over the
    same files finds them unchanged. A file the store already knows with that path, size and
    mtime is skipped, as `index_paths` skips it. Only headers are taken here: a file whose
    header could not be built (a problem) is the caller's to pass to `index_paths`, which reads
    it and words the problem (as `receive._index_files` does).

    `database`: an open index (`open_index`) to write through and leave open; else one is
    opened and closed here.
    """
    by_path = {header.path: header for header in headers}  # each file once, as index_paths
    stats = sorted(_FileStat(h.path, h.size, h.mtime_ns) for h in by_path.values())
    summary = IndexSummary(files_seen=len(stats))
    db = database if database is not None else open_index(store_dir)
    try:
        todo = _files_to_read(db, stats, copy=False)
        summary.skipped_unchanged = len(stats) - len(todo)
        batch = [_Parsed(stat, header=instance_rows(by_path[stat.path])) for stat in todo]
        for start in range(0, len(batch), BATCH_SIZE):
            part = batch[start : start + BATCH_SIZE]
            if not _write_new_files(db, part, summary):
                write_batch(db, part, summary, False, Path(store_dir))
        summary.problems += _series_problem_count(db, summary.series_touched)
    finally:
        if database is None:
            db.close()
    return summary


# The statements `index_write` runs per file for an instance and its file (`_insert_instance`,
# `_remember_file`), run here once per batch; tests/dicom/test_index_headers.py holds the rows
# to those `index_paths` writes.
_INSERT_INSTANCE = (
    "INSERT INTO dicom_instances(sop_instance_uid, series_uid, path, source_path, size, "
    "mtime_ns, sop_class_uid, transfer_syntax_uid, image_type, number_of_frames, indexed_at) "
    "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_REMEMBER_FILE = (
    "INSERT INTO dicom_files(path, size, mtime_ns, status, sop_instance_uid, copied, "
    "indexed_at) VALUES(?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET "
    "size = excluded.size, mtime_ns = excluded.mtime_ns, status = excluded.status, "
    "sop_instance_uid = excluded.sop_instance_uid, copied = excluded.copied, "
    "indexed_at = excluded.indexed_at"
)


def _write_new_files(db: Database, batch: list[_Parsed], summary: IndexSummary) -> bool:
    """`write_batch` for a batch of images the index has never held (no instance with their
    paths or SOP Instance UIDs, no UID twice in the batch: a retrieval's usual batch), with one
    statement per table for the whole batch instead of six per file; the same rows, in one
    transaction. False, having written nothing, when the batch is not such a batch: then
    `write_batch` decides file by file (updates, duplicates)."""
    sops = [parsed.header.sop_instance_uid for parsed in batch if parsed.header is not None]
    if len(sops) != len(batch) or len(set(sops)) != len(sops):
        return False
    paths = [parsed.stat.path for parsed in batch]
    now = now_text()
    with db.transaction() as conn:
        for start in range(0, len(batch), 400):
            chunk_paths, chunk_sops = paths[start : start + 400], sops[start : start + 400]
            marks = ", ".join("?" for _ in chunk_paths)
            held = conn.execute(
                f"SELECT 1 FROM dicom_instances WHERE source_path IN ({marks}) "
                f"OR sop_instance_uid IN ({marks}) LIMIT 1",
                (*chunk_paths, *chunk_sops),
            ).fetchone()
            if held is not None:
                return False
        conn.execute("PRAGMA defer_foreign_keys = ON")
        conn.executemany(
            "DELETE FROM dicom_problems WHERE path = ? AND kind != 'series'",
            [(path,) for path in paths],
        )
        rows = [parsed.header for parsed in batch]
        conn.executemany(
            _INSERT_INSTANCE,
            [_instance_values(r, path, now) for r, path in zip(rows, paths)],
        )
        conn.executemany(INSERT_FRAME_SQL, [frame for r in rows for frame in r.frame_rows])
        described = BatchDescriptions()
        touched: set[str] = set()
        for r, path in zip(rows, paths):
            described.add(r)
            touched.add(r.series_uid)
            for warning in r.warnings:
                record_problem(conn, path, "warning", warning, r.series_uid, now, summary)
        conn.executemany(
            _REMEMBER_FILE,
            [
                (parsed.stat.path, parsed.stat.size, parsed.stat.mtime_ns, "ok", sop, 0, now)
                for parsed, sop in zip(batch, sops)
            ],
        )
        described.write(conn)
        refresh_series(conn, touched)
    summary.series_touched |= touched
    summary.instances_added += len(batch)
    return True


def _instance_values(rows: InstanceRows, path: str, now: str) -> tuple:
    """One dicom_instances row of a file indexed in place (its path is its source)."""
    sop_class, syntax, image_type, frames = rows.instance_row
    identity = (rows.sop_instance_uid, rows.series_uid, path, path, rows.size, rows.mtime_ns)
    return (*identity, sop_class, syntax, image_type, frames, now)


def _series_problem_count(db: Database, series_uids: set[str]) -> int:
    """Series-level problems (sizes that differ inside a series) of the series this run touched."""
    uids = sorted(series_uids)
    count = 0
    for start in range(0, len(uids), 500):
        chunk = uids[start : start + 500]
        count += db.query(
            "SELECT COUNT(*) AS n FROM dicom_problems WHERE kind = 'series' "
            f"AND series_uid IN ({', '.join('?' for _ in chunk)})",
            tuple(chunk),
        )[0]["n"]
    return count


# --- finding files ------------------------------------------------------------------------------
def _walk(roots: Iterable[str], exclude: str, unlistable: dict[str, str]) -> list[_FileStat]:
    """Every regular file under `roots` (sorted, each once), with its size and mtime.

    Folders that cannot be listed are put in `unlistable` (path -> reason), never skipped silently.
    """
    found: dict[str, _FileStat] = {}

    def note(error: OSError) -> None:
        unlistable[error.filename] = f"cannot list the folder: {error.strerror or error}"

    for root in roots:
        if os.path.isfile(root):
            st = os.stat(root)
            found[root] = _FileStat(root, st.st_size, st.st_mtime_ns)
            continue
        for dirpath, dirnames, filenames in os.walk(root, onerror=note):
            if dirpath == exclude:
                dirnames.clear()
                continue
            dirnames.sort()
            for name in filenames:
                path = os.path.join(dirpath, name)
                try:
                    st = os.stat(path)
                except OSError:
                    continue  # vanished between listing and stat: not there, nothing to index
                if stat.S_ISREG(st.st_mode):
                    found[path] = _FileStat(path, st.st_size, st.st_mtime_ns)
    return [found[p] for p in sorted(found)]


def _under(root: str) -> tuple[str, str]:
    """Range of paths (as text) strictly inside folder `root`: [root/, root0)."""
    return root.rstrip("/") + "/", root.rstrip("/") + "0"


def _remove_vanished(
    conn: sqlite3.Connection,
    roots: list[str],
    seen: set[str],
    unlistable: dict[str, str],
    summary: IndexSummary,
) -> list[str]:
    """Forget files that were indexed under `roots` and are gone; return their paths.

    Files inside folders that could not be listed this time are kept: they may still be there.
    """
    hidden = tuple(folder.rstrip("/") + "/" for folder in unlistable)
    known: list[str] = []
    for root in roots:
        low, high = _under(root)
        rows = conn.execute(
            "SELECT path FROM dicom_files WHERE path = ? OR (path >= ? AND path < ?)",
            (root, low, high),
        ).fetchall()
        known.extend(r["path"] for r in rows)
    removed = sorted({p for p in known if p not in seen and not p.startswith(hidden)})
    for path in removed:
        for inst in conn.execute(
            "SELECT sop_instance_uid, series_uid, path FROM dicom_instances WHERE source_path = ?",
            (path,),
        ).fetchall():
            if inst["path"] == path:  # referenced in place: the image is gone
                delete_instance(conn, inst["sop_instance_uid"])
                summary.series_touched.add(inst["series_uid"])
            else:  # copied into the store: the copy stays, only the link to the source goes
                conn.execute(
                    "UPDATE dicom_instances SET source_path = path WHERE sop_instance_uid = ?",
                    (inst["sop_instance_uid"],),
                )
        conn.execute("DELETE FROM dicom_files WHERE path = ?", (path,))
        conn.execute("DELETE FROM dicom_problems WHERE path = ?", (path,))
    refresh_series(conn, summary.series_touched)
    return removed


def _record_unlistable(
    conn: sqlite3.Connection, roots: list[str], unlistable: dict[str, str], summary: IndexSummary
) -> None:
    """Folders this walk could not list replace those the last walk of these roots reported.

    Files already indexed inside such a folder stay indexed: they were not seen, but they may still
    be there, so they are not removed.
    """
    for root in roots:
        low, high = _under(root)
        conn.execute(
            "DELETE FROM dicom_problems WHERE kind = 'folder' "
            "AND (path = ? OR (path >= ? AND path < ?))",
            (root, low, high),
        )
    now = now_text()
    for path, reason in sorted(unlistable.items()):
        record_problem(conn, path, "folder", reason, None, now, summary)


def _files_to_read(db: Database, files: list[_FileStat], copy: bool) -> list[_FileStat]:
    """The files whose path, size or mtime differ from what the store remembers."""
    known: dict[str, sqlite3.Row] = {}
    paths = [f.path for f in files]
    for start in range(0, len(paths), 500):
        chunk = paths[start : start + 500]
        rows = db.query(
            "SELECT path, size, mtime_ns, status, copied FROM dicom_files "
            f"WHERE path IN ({', '.join('?' for _ in chunk)})",
            tuple(chunk),
        )
        known.update((r["path"], r) for r in rows)
    todo = []
    for f in files:
        row = known.get(f.path)
        unchanged = row is not None and row["size"] == f.size and row["mtime_ns"] == f.mtime_ns
        if unchanged and copy and row["status"] == "ok" and not row["copied"]:
            unchanged = False  # indexed in place before; now asked to copy it into the store
        if not unchanged:
            todo.append(f)
    return todo


# --- parsing ------------------------------------------------------------------------------------
def _parse_one(stat: _FileStat) -> _Parsed:
    """Read one header; never raises, so one bad file cannot stop the pool."""
    try:
        return _Parsed(stat, header=instance_rows(read_header(stat.path)))
    except DicomProblem as problem:
        return _Parsed(stat, reason=problem.reason)
    except PermissionError:
        return _Parsed(stat, reason="cannot read the file: permission denied")
    except OSError as error:
        return _Parsed(stat, reason=f"cannot read the file: {error.strerror or error}")
    except Exception as error:  # a header the parser chokes on is a problem with that file
        return _Parsed(stat, reason=f"not a readable DICOM file ({type(error).__name__}: {error})")


def _parse_all(todo: list[_FileStat]) -> Iterator[_Parsed]:
    """Parsed headers in the order of `todo`, in parallel when there are enough files."""
    workers = min(os.cpu_count() or 1, 8)
    if len(todo) < PARALLEL_THRESHOLD or workers < 2:
        yield from map(_parse_one, todo)
        return
    import multiprocessing
    import threading

    # fork is the cheapest start, but forking a process that runs other threads (the GUI) can
    # copy a lock that another thread holds; then the workers start from a clean server instead.
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        method = "fork"
    else:
        method = "forkserver" if "forkserver" in methods else "spawn"
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as pool:
        chunksize = max(4, min(64, len(todo) // (workers * 8) or 1))
        yield from pool.map(_parse_one, todo, chunksize=chunksize)


__all__ = [
    "BATCH_SIZE",
    "COPY_FOLDER",
    "IndexSummary",
    "index_headers",
    "index_paths",
    "open_index",
    "series_frames",
    "split_stacks",
]
