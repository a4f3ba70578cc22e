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
        stacks = _stack_rows(conn, uid)
        conn.executemany(
            "INSERT INTO dicom_stacks(series_uid, stack, rows, columns, slices, instances, "
            "stack_key) VALUES(?, ?, ?, ?, ?, ?, ?)",
            [(uid, number, *stack) for number, stack in enumerate(stacks)],
        )
        _flag_size_mismatch(conn, uid, stacks, now)


def _stack_rows(conn: sqlite3.Connection, uid: str) -> list[tuple[int, int, int, int, str]]:
    """(rows, columns, slices, instances, stack_key) of each stack of a series, numbered as
    `split_stacks` numbers them: by stack key, biggest first, ties by key.

    Counted in SQL rather than by loading the series' frames: this runs for every touched series
    in every batch, and a stack's key already holds its size (so all its frames share it).
    """
    rows = conn.execute(
        "SELECT MIN(rows) AS r, MIN(columns) AS c, COUNT(*) AS n, "
        "COUNT(DISTINCT sop_instance_uid) AS i, stack_key FROM dicom_frames "
        "WHERE series_uid = ? GROUP BY stack_key",
        (uid,),
    ).fetchall()
    stacks = [(r["r"], r["c"], r["n"], r["i"], r["stack_key"]) for r in rows]
    stacks.sort(key=lambda stack: (-stack[2], stack[4]))
    return stacks


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
    conn: sqlite3.Connection, uid: str, stacks: list[tuple[int, int, int, int, str]], now: str
) -> None:
    """Rows x Columns that differ inside one series: each odd file is reported by path."""
    main = stacks[0][:2]
    for number, stack in enumerate(stacks[1:], start=1):
        size = stack[:2]
        if size == main:
            continue
        reason = (
            f"Rows x Columns {size[0]}x{size[1]} differ from {main[0]}x{main[1]} in the rest of "
            f"series {uid}; listed separately as stack {uid}#{number}"
        )
        paths = conn.execute(
            "SELECT DISTINCT path FROM dicom_frames WHERE series_uid = ? AND stack_key = ?",
            (uid, stack[4]),
        ).fetchall()
        for path in sorted(row["path"] for row in paths):
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
