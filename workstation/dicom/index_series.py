"""Per-series bookkeeping of the index: counts, stacks and size mismatches, kept in step with
every batch so the store is consistent after each commit (and after a kill)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime

from workstation.dicom.index_schema import frame_from_row
from workstation.dicom.records import FrameRecord
from workstation.store.database import Database


def now_text() -> str:
    """The time stamps stored with rows and problems (UTC, seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def refresh_series(conn: sqlite3.Connection, series_uids: Iterable[str]) -> None:
    """Recount touched series, re-split their stacks, flag size mismatches, drop empty ones."""
    now = now_text()
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


def _flag_size_mismatch(
    conn: sqlite3.Connection, uid: str, stacks: list[list[FrameRecord]], now: str
) -> None:
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


def series_frames(conn: sqlite3.Connection | Database, series_uid: str) -> list[FrameRecord]:
    """All stored frames of a series, in a fixed order (by SOP Instance UID, then frame)."""
    sql = "SELECT * FROM dicom_frames WHERE series_uid = ? ORDER BY sop_instance_uid, frame_index"
    rows = (
        conn.query(sql, (series_uid,))
        if isinstance(conn, Database)
        else conn.execute(sql, (series_uid,)).fetchall()
    )
    return [frame_from_row(r) for r in rows]


def split_stacks(frames: list[FrameRecord]) -> list[list[FrameRecord]]:
    """A series' frames split into stacks the way the loader splits them (stack 0 first)."""
    from workstation.dicom.stacks import group_stacks

    return [list(stack) for stack in group_stacks(frames) if stack]
