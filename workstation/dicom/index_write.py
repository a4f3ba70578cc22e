"""Writing one batch of parsed files into the index: instances, frames, problems, copies.

Everything for a batch runs in one transaction (copies into the store are made before it, each
written to a temporary name and renamed), so a kill leaves either the whole batch or none of it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from workstation.dicom.index_schema import FRAME_COLUMNS, INSERT_FRAME_SQL, frame_to_row
from workstation.dicom.index_series import now_text, refresh_series
from workstation.dicom.records import InstanceHeader
from workstation.store.database import Database

if TYPE_CHECKING:  # pragma: no cover - types only; index imports this module
    from workstation.dicom.index import IndexSummary, _FileStat, _Parsed

COPY_FOLDER = "files"
PATH_COLUMN = FRAME_COLUMNS.index("path")


class InstanceRows(NamedTuple):
    """One parsed file as the values the index writes, made where it is parsed.

    Parsing workers send these back instead of `InstanceHeader`s: plain tuples pickle and unpickle
    several times faster than frozen dataclasses, and the frame rows are ready for executemany.
    """

    sop_instance_uid: str
    series_uid: str
    study_uid: str
    size: int
    mtime_ns: int
    patient_row: tuple  # dicom_patients values
    study_row: tuple  # dicom_studies values
    series_row: tuple  # dicom_series values
    instance_row: tuple  # sop class, transfer syntax, image type, number of frames
    frame_rows: tuple[tuple, ...]  # dicom_frames values, FRAME_COLUMNS order
    warnings: tuple[str, ...]


def instance_rows(header: InstanceHeader) -> InstanceRows:
    """The rows `write_batch` stores for one header."""
    return InstanceRows(
        sop_instance_uid=header.sop_instance_uid,
        series_uid=header.series_uid,
        study_uid=header.study_uid,
        size=header.size,
        mtime_ns=header.mtime_ns,
        patient_row=(
            header.patient_id,
            header.patient_name,
            header.patient_birth_date,
            header.patient_sex,
        ),
        study_row=(
            header.study_uid,
            header.patient_id,
            header.study_date,
            header.study_time,
            header.study_description,
            header.accession_number,
        ),
        series_row=(
            header.series_uid,
            header.study_uid,
            header.series_number,
            header.modality,
            header.series_description,
            int(header.synthetic),
        ),
        instance_row=(
            header.sop_class_uid,
            header.transfer_syntax_uid,
            "\\".join(header.image_type),
            len(header.frames),
        ),
        frame_rows=tuple(frame_to_row(f) for f in header.frames),
        warnings=header.warnings,
    )


def write_batch(
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
    now = now_text()
    touched: set[str] = set()
    described = BatchDescriptions()
    with db.transaction() as conn:
        # Instances reference their series before the batch's descriptions are written (below):
        # the foreign keys are checked at commit.
        conn.execute("PRAGMA defer_foreign_keys = ON")
        for parsed in batch:
            _apply(conn, parsed, copies.get(parsed.stat.path), now, summary, touched, described)
        described.write(conn)
        refresh_series(conn, touched)
        summary.series_touched |= touched


class BatchDescriptions:
    """Patient, study and series rows of one batch, written once per key at the batch's end.

    Writing them per file cost three upserts per instance (a third of the write time) for rows
    that are the same across a series. The outcome is the same as upserting file by file: the
    batch's last row for each key wins, and a series stays marked synthetic if any file says so.
    """

    def __init__(self) -> None:
        self.patients: dict[str, tuple] = {}
        self.studies: dict[str, tuple] = {}
        self.series: dict[str, tuple] = {}

    def add(self, rows: InstanceRows) -> None:
        self.patients[rows.patient_row[0]] = rows.patient_row
        self.studies[rows.study_row[0]] = rows.study_row
        earlier = self.series.get(rows.series_row[0])
        row = rows.series_row
        if earlier is not None and earlier[-1] > row[-1]:
            row = (*row[:-1], earlier[-1])  # synthetic is kept once set
        self.series[row[0]] = row

    def write(self, conn: sqlite3.Connection) -> None:
        conn.executemany(
            "INSERT INTO dicom_patients(patient_id, patient_name, birth_date, sex) "
            "VALUES(?, ?, ?, ?) ON CONFLICT(patient_id) DO UPDATE SET "
            "patient_name = excluded.patient_name, birth_date = excluded.birth_date, "
            "sex = excluded.sex",
            list(self.patients.values()),
        )
        conn.executemany(
            "INSERT INTO dicom_studies(study_uid, patient_id, study_date, study_time, "
            "description, accession_number) VALUES(?, ?, ?, ?, ?, ?) ON CONFLICT(study_uid) "
            "DO UPDATE SET patient_id = excluded.patient_id, study_date = excluded.study_date, "
            "study_time = excluded.study_time, description = excluded.description, "
            "accession_number = excluded.accession_number",
            list(self.studies.values()),
        )
        conn.executemany(
            "INSERT INTO dicom_series(series_uid, study_uid, series_number, modality, "
            "description, synthetic) VALUES(?, ?, ?, ?, ?, ?) ON CONFLICT(series_uid) DO UPDATE "
            "SET study_uid = excluded.study_uid, series_number = excluded.series_number, "
            "modality = excluded.modality, description = excluded.description, "
            "synthetic = MAX(dicom_series.synthetic, excluded.synthetic)",
            list(self.series.values()),
        )


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
    described: BatchDescriptions,
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
            delete_instance(conn, row["sop_instance_uid"], remove_copy=row["path"] != source)
            touched.add(row["series_uid"])
        record_problem(conn, source, "file", parsed.reason, None, now, summary)
        _remember_file(conn, parsed.stat, "problem", None, False, now)
        return

    sop = header.sop_instance_uid
    updated = False
    for row in previous:
        if row["sop_instance_uid"] != sop:
            delete_instance(conn, row["sop_instance_uid"], remove_copy=row["path"] != source)
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
            record_problem(conn, source, "duplicate", reason, header.series_uid, now, summary)
            _remember_file(conn, parsed.stat, "duplicate", sop, False, now)
            return
        # The same image: read again after a change, or moved here from a path that is gone.
        # Its duplicates elsewhere still lose to it, so they are not read again.
        delete_instance(conn, sop, release_duplicates=False)
        touched.add(holder["series_uid"])
        conn.execute("DELETE FROM dicom_files WHERE path = ?", (holder["source_path"],))
        updated = True
    elif previous:
        updated = True

    _insert_instance(conn, header, source, copy_path, now)
    described.add(header)
    touched.add(header.series_uid)
    for warning in header.warnings:
        record_problem(conn, source, "warning", warning, header.series_uid, now, summary)
    _remember_file(conn, parsed.stat, "ok", sop, copy_path is not None, now)
    if updated:
        summary.instances_updated += 1
    else:
        summary.instances_added += 1


def _insert_instance(
    conn: sqlite3.Connection, rows: InstanceRows, source: str, copy_path: str | None, now: str
) -> None:
    path = copy_path or source
    size, mtime_ns = rows.size, rows.mtime_ns
    if copy_path is not None:  # loading checks the file it reads: the copy
        st = os.stat(copy_path)
        size, mtime_ns = st.st_size, st.st_mtime_ns
    identity = (rows.sop_instance_uid, rows.series_uid, path, source, size, mtime_ns)
    conn.execute(
        "INSERT INTO dicom_instances(sop_instance_uid, series_uid, path, source_path, size, "
        "mtime_ns, sop_class_uid, transfer_syntax_uid, image_type, number_of_frames, indexed_at) "
        "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (*identity, *rows.instance_row, now),
    )
    frames = rows.frame_rows
    if copy_path is not None:
        frames = tuple((*f[:PATH_COLUMN], path, *f[PATH_COLUMN + 1 :]) for f in frames)
    conn.executemany(INSERT_FRAME_SQL, frames)


def delete_instance(
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


def record_problem(
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
