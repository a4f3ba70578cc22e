"""Index folders of DICOM files into the store: headers only, incremental, parallel, crash-safe.

How it works, and the promises a user relies on:

* Every file under the given paths is looked at once per run. A file whose path, size and mtime
  match what the store remembers is skipped, whether it was good or bad last time.
* Headers are parsed in parallel (a process pool: pydicom parsing is pure Python, so threads do
  not help). Results are written in batches, one transaction per batch, so killing the process at
  any moment leaves the last committed batch and a consistent store; running again completes it.
* Files that were indexed under a given folder and no longer exist there are removed from the
  store and reported (with ``--copy`` the store's own copy stays: only the source link is dropped).
* A bad file never stops the rest: it is recorded as a problem with its path and reason, and its
  problems are cleared once it is fixed and indexed again.
* Duplicate SOP Instance UIDs: the copy already in the store wins (within one run, the first path
  in sorted order); later copies are recorded as problems naming the file that is used. If the
  winning file disappears, its duplicates are read again and one of them takes over.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from workstation.dicom.index_schema import AREA, INSERT_FRAME_SQL, frame_from_row, frame_to_row
from workstation.dicom.records import DicomProblem, InstanceHeader
from workstation.store.database import Database, open_database

Progress = Callable[[int, int], None]

# Files per transaction: large enough that commits are cheap, small enough that a kill loses little.
BATCH_SIZE = 200
# Below this many files to parse, a process pool costs more to start than it saves.
PARALLEL_THRESHOLD = 48
COPY_FOLDER = "files"


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


@dataclass(frozen=True)
class _FileStat:
    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class _Parsed:
    """A worker's answer for one file: a header, or the reason it could not be read."""

    stat: _FileStat
    header: InstanceHeader | None = None
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
                _write_batch(db, batch, summary, copy, store_dir)
                batch = []
            done += 1
            if progress:
                progress(done, total)
        if batch:
            _write_batch(db, batch, summary, copy, store_dir)
        summary.problems += _series_problem_count(db, summary.series_touched)
    finally:
        db.close()
    return summary


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
                _delete_instance(conn, inst["sop_instance_uid"])
                summary.series_touched.add(inst["series_uid"])
            else:  # copied into the store: the copy stays, only the link to the source goes
                conn.execute(
                    "UPDATE dicom_instances SET source_path = path WHERE sop_instance_uid = ?",
                    (inst["sop_instance_uid"],),
                )
        conn.execute("DELETE FROM dicom_files WHERE path = ?", (path,))
        conn.execute("DELETE FROM dicom_problems WHERE path = ?", (path,))
    _refresh_series(conn, summary.series_touched)
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
    now = _now()
    for path, reason in sorted(unlistable.items()):
        _record_problem(conn, path, "folder", reason, None, now, summary)


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
    from workstation.dicom.headers import read_header

    try:
        return _Parsed(stat, header=read_header(stat.path))
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


# --- writing ------------------------------------------------------------------------------------
def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_batch(
    db: Database, batch: list[_Parsed], summary: IndexSummary, copy: bool, store_dir: Path
) -> None:
    """Apply one batch of parsed files in one transaction."""
    copies: dict[str, str] = {}
    if copy:
        copied_sops: set[str] = set()
        for parsed in batch:
            header = parsed.header
            if header is None or header.sop_instance_uid in copied_sops:
                continue
            if _held_by_another_file(db, header.sop_instance_uid, parsed.stat.path):
                continue  # a duplicate: never overwrite the copy that is in use
            copies[parsed.stat.path] = _copy_into_store(parsed, store_dir)
            copied_sops.add(header.sop_instance_uid)
    now = _now()
    touched: set[str] = set()
    with db.transaction() as conn:
        for parsed in batch:
            _apply(conn, parsed, copies.get(parsed.stat.path), now, summary, touched)
        _refresh_series(conn, touched)
        summary.series_touched |= touched


def _held_by_another_file(db: Database, sop: str, source: str) -> bool:
    rows = db.query(
        "SELECT source_path, path FROM dicom_instances WHERE sop_instance_uid = ?", (sop,)
    )
    return bool(rows) and rows[0]["source_path"] != source and os.path.exists(rows[0]["path"])


def _copy_into_store(parsed: _Parsed, store_dir: Path) -> str:
    """Copy the file to <store>/files/<study>/<series>/<sop>.dcm atomically; return the copy."""
    header = parsed.header
    assert header is not None
    target = store_dir / COPY_FOLDER / header.study_uid / header.series_uid
    target.mkdir(parents=True, exist_ok=True)
    final = target / f"{header.sop_instance_uid}.dcm"
    fd, temp = tempfile.mkstemp(dir=target, prefix=".incoming-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, open(parsed.stat.path, "rb") as source:
            shutil.copyfileobj(source, out, 1 << 20)
        os.replace(temp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return os.path.realpath(final)


def _apply(
    conn: sqlite3.Connection,
    parsed: _Parsed,
    copy_path: str | None,
    now: str,
    summary: IndexSummary,
    touched: set[str],
) -> None:
    """Record one file's outcome, replacing whatever the store knew about that path."""
    source = parsed.stat.path
    conn.execute("DELETE FROM dicom_problems WHERE path = ? AND kind != 'series'", (source,))
    previous = conn.execute(
        "SELECT sop_instance_uid, series_uid, path FROM dicom_instances WHERE source_path = ?",
        (source,),
    ).fetchall()
    header = parsed.header
    if header is None:
        for row in previous:
            _delete_instance(conn, row["sop_instance_uid"], remove_copy=row["path"] != source)
            touched.add(row["series_uid"])
        _record_problem(conn, source, "file", parsed.reason, None, now, summary)
        _remember_file(conn, parsed.stat, "problem", None, False, now)
        return

    sop = header.sop_instance_uid
    updated = False
    for row in previous:
        if row["sop_instance_uid"] != sop:
            _delete_instance(conn, row["sop_instance_uid"], remove_copy=row["path"] != source)
        touched.add(row["series_uid"])
    holder = conn.execute(
        "SELECT source_path, path, series_uid FROM dicom_instances WHERE sop_instance_uid = ?",
        (sop,),
    ).fetchone()
    if holder is not None:
        same_file = holder["source_path"] == source or holder["path"] == copy_path
        if not same_file and os.path.exists(holder["path"]):
            reason = (
                f"duplicate SOP Instance UID {sop}: already indexed from {holder['source_path']}; "
                "this copy is not used"
            )
            _record_problem(conn, source, "duplicate", reason, header.series_uid, now, summary)
            _remember_file(conn, parsed.stat, "duplicate", sop, False, now)
            return
        # The same image: read again after a change, or moved here from a path that is gone.
        # Its duplicates elsewhere still lose to it, so they are not read again.
        _delete_instance(conn, sop, release_duplicates=False)
        touched.add(holder["series_uid"])
        conn.execute("DELETE FROM dicom_files WHERE path = ?", (holder["source_path"],))
        updated = True
    elif previous:
        updated = True

    _insert_instance(conn, header, source, copy_path, now)
    touched.add(header.series_uid)
    for warning in header.warnings:
        _record_problem(conn, source, "warning", warning, header.series_uid, now, summary)
    _remember_file(conn, parsed.stat, "ok", sop, copy_path is not None, now)
    if updated:
        summary.instances_updated += 1
    else:
        summary.instances_added += 1


def _insert_instance(
    conn: sqlite3.Connection, header: InstanceHeader, source: str, copy_path: str | None, now: str
) -> None:
    path = copy_path or source
    size, mtime_ns = header.size, header.mtime_ns
    if copy_path is not None:  # loading checks the file it reads: the copy
        st = os.stat(copy_path)
        size, mtime_ns = st.st_size, st.st_mtime_ns
    conn.execute(
        "INSERT INTO dicom_patients(patient_id, patient_name, birth_date, sex) VALUES(?, ?, ?, ?) "
        "ON CONFLICT(patient_id) DO UPDATE SET patient_name = excluded.patient_name, "
        "birth_date = excluded.birth_date, sex = excluded.sex",
        (header.patient_id, header.patient_name, header.patient_birth_date, header.patient_sex),
    )
    conn.execute(
        "INSERT INTO dicom_studies(study_uid, patient_id, study_date, study_time, description, "
        "accession_number) VALUES(?, ?, ?, ?, ?, ?) ON CONFLICT(study_uid) DO UPDATE SET "
        "patient_id = excluded.patient_id, study_date = excluded.study_date, "
        "study_time = excluded.study_time, description = excluded.description, "
        "accession_number = excluded.accession_number",
        (
            header.study_uid,
            header.patient_id,
            header.study_date,
            header.study_time,
            header.study_description,
            header.accession_number,
        ),
    )
    conn.execute(
        "INSERT INTO dicom_series(series_uid, study_uid, series_number, modality, description, "
        "synthetic) VALUES(?, ?, ?, ?, ?, ?) ON CONFLICT(series_uid) DO UPDATE SET "
        "study_uid = excluded.study_uid, series_number = excluded.series_number, "
        "modality = excluded.modality, description = excluded.description, "
        "synthetic = MAX(dicom_series.synthetic, excluded.synthetic)",
        (
            header.series_uid,
            header.study_uid,
            header.series_number,
            header.modality,
            header.series_description,
            int(header.synthetic),
        ),
    )
    conn.execute(
        "INSERT INTO dicom_instances(sop_instance_uid, series_uid, path, source_path, size, "
        "mtime_ns, sop_class_uid, transfer_syntax_uid, image_type, number_of_frames, indexed_at) "
        "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            header.sop_instance_uid,
            header.series_uid,
            path,
            source,
            size,
            mtime_ns,
            header.sop_class_uid,
            header.transfer_syntax_uid,
            "\\".join(header.image_type),
            len(header.frames),
            now,
        ),
    )
    frames = header.frames if copy_path is None else [replace(f, path=path) for f in header.frames]
    conn.executemany(INSERT_FRAME_SQL, [frame_to_row(f) for f in frames])


def _delete_instance(
    conn: sqlite3.Connection, sop: str, remove_copy: bool = False, release_duplicates: bool = True
) -> None:
    """Drop an instance and its frames (and, for a store copy being replaced, the copied file)."""
    if remove_copy:
        row = conn.execute(
            "SELECT path FROM dicom_instances WHERE sop_instance_uid = ?", (sop,)
        ).fetchone()
        if row is not None:
            with contextlib.suppress(OSError):
                os.unlink(row["path"])
    conn.execute("DELETE FROM dicom_frames WHERE sop_instance_uid = ?", (sop,))
    conn.execute("DELETE FROM dicom_instances WHERE sop_instance_uid = ?", (sop,))
    if not release_duplicates:
        return
    # Duplicates that lost to this instance get read again on the next run, and one takes over.
    conn.execute(
        "DELETE FROM dicom_files WHERE status = 'duplicate' AND sop_instance_uid = ?", (sop,)
    )


def _record_problem(
    conn: sqlite3.Connection,
    path: str,
    kind: str,
    reason: str,
    series_uid: str | None,
    now: str,
    summary: IndexSummary,
) -> None:
    conn.execute(
        "INSERT INTO dicom_problems(path, kind, reason, series_uid, detected_at) "
        "VALUES(?, ?, ?, ?, ?)",
        (path, kind, reason, series_uid, now),
    )
    summary.problems += 1


def _remember_file(
    conn: sqlite3.Connection, stat: _FileStat, status: str, sop: str | None, copied: bool, now: str
) -> None:
    conn.execute(
        "INSERT INTO dicom_files(path, size, mtime_ns, status, sop_instance_uid, copied, "
        "indexed_at) VALUES(?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET "
        "size = excluded.size, mtime_ns = excluded.mtime_ns, status = excluded.status, "
        "sop_instance_uid = excluded.sop_instance_uid, copied = excluded.copied, "
        "indexed_at = excluded.indexed_at",
        (stat.path, stat.size, stat.mtime_ns, status, sop, int(copied), now),
    )


# --- per-series bookkeeping ---------------------------------------------------------------------
def _refresh_series(conn: sqlite3.Connection, series_uids: Iterable[str]) -> None:
    """Recount touched series, re-split their stacks, flag size mismatches, drop empty ones."""
    now = _now()
    for uid in sorted(set(series_uids)):
        counts = conn.execute(
            "SELECT COUNT(*) AS n, COALESCE(SUM(number_of_frames), 0) AS f "
            "FROM dicom_instances WHERE series_uid = ?",
            (uid,),
        ).fetchone()
        conn.execute("DELETE FROM dicom_stacks WHERE series_uid = ?", (uid,))
        conn.execute("DELETE FROM dicom_problems WHERE series_uid = ? AND kind = 'series'", (uid,))
        if counts["n"] == 0:
            study = conn.execute(
                "SELECT study_uid FROM dicom_series WHERE series_uid = ?", (uid,)
            ).fetchone()
            conn.execute("DELETE FROM dicom_series WHERE series_uid = ?", (uid,))
            if study is not None:
                _drop_empty_study(conn, study["study_uid"])
            continue
        conn.execute(
            "UPDATE dicom_series SET instance_count = ?, frame_count = ? WHERE series_uid = ?",
            (counts["n"], counts["f"], uid),
        )
        frames = series_frames(conn, uid)
        stacks = split_stacks(frames)
        for number, stack in enumerate(stacks):
            first = stack[0]
            conn.execute(
                "INSERT INTO dicom_stacks(series_uid, stack, rows, columns, slices, instances, "
                "stack_key) VALUES(?, ?, ?, ?, ?, ?, ?)",
                (
                    uid,
                    number,
                    first.rows,
                    first.columns,
                    len(stack),
                    len({f.sop_instance_uid for f in stack}),
                    first.stack_key,
                ),
            )
        _flag_size_mismatch(conn, uid, stacks, now)


def _drop_empty_study(conn: sqlite3.Connection, study_uid: str) -> None:
    left = conn.execute(
        "SELECT COUNT(*) AS n FROM dicom_series WHERE study_uid = ?", (study_uid,)
    ).fetchone()
    if left["n"]:
        return
    patient = conn.execute(
        "SELECT patient_id FROM dicom_studies WHERE study_uid = ?", (study_uid,)
    ).fetchone()
    conn.execute("DELETE FROM dicom_studies WHERE study_uid = ?", (study_uid,))
    if patient is not None:
        conn.execute(
            "DELETE FROM dicom_patients WHERE patient_id = ? AND NOT EXISTS "
            "(SELECT 1 FROM dicom_studies WHERE patient_id = ?)",
            (patient["patient_id"], patient["patient_id"]),
        )


def _flag_size_mismatch(conn: sqlite3.Connection, uid: str, stacks: list, now: str) -> None:
    """Rows x Columns that differ inside one series: each odd file is reported by path."""
    main = (stacks[0][0].rows, stacks[0][0].columns)
    for number, stack in enumerate(stacks[1:], start=1):
        size = (stack[0].rows, stack[0].columns)
        if size == main:
            continue
        reason = (
            f"Rows x Columns {size[0]}x{size[1]} differ from {main[0]}x{main[1]} in the rest of "
            f"series {uid}; listed separately as stack {uid}#{number}"
        )
        for path in sorted({f.path for f in stack}):
            source = conn.execute(
                "SELECT source_path FROM dicom_instances WHERE path = ?", (path,)
            ).fetchone()
            conn.execute(
                "INSERT INTO dicom_problems(path, kind, reason, series_uid, detected_at) "
                "VALUES(?, 'series', ?, ?, ?)",
                (source["source_path"] if source else path, reason, uid, now),
            )


def series_frames(conn: sqlite3.Connection | Database, series_uid: str) -> list:
    """All stored frames of a series, in a fixed order (by SOP Instance UID, then frame)."""
    sql = "SELECT * FROM dicom_frames WHERE series_uid = ? ORDER BY sop_instance_uid, frame_index"
    rows = (
        conn.query(sql, (series_uid,))
        if isinstance(conn, Database)
        else conn.execute(sql, (series_uid,)).fetchall()
    )
    return [frame_from_row(r) for r in rows]


def split_stacks(frames: list) -> list[list]:
    """A series' frames split into stacks the way the loader splits them (stack 0 first)."""
    from workstation.dicom.stacks import group_stacks

    return [list(stack) for stack in group_stacks(frames) if stack]
