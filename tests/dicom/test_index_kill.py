"""SIGKILL in the middle of `workstation index` leaves a consistent store; a re-run completes it."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workstation.dicom.index import BATCH_SIZE, index_paths
from workstation.dicom.index_samples import write_series

FILES = 4 * BATCH_SIZE
REPO = Path(__file__).resolve().parents[2]


def write_many(folder: Path, count: int) -> None:
    """`count` files of one series, fast: one written by pydicom, the rest byte copies of it with
    a different SOP Instance UID of the same length (positions repeat; loading is not tested)."""
    template = write_series(folder, slices=1, rows=4, columns=4)
    data = template.paths[0].read_bytes()
    uid = template.sop_uids[0].encode()
    assert data.count(uid) == 2  # file meta and dataset
    for n in range(1, count):
        other = uid[:-7] + f"{n:07d}".encode()
        (folder / f"copy{n:05d}.dcm").write_bytes(data.replace(uid, other))


def committed_files(db_path: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1)
        try:
            return conn.execute("SELECT COUNT(*) FROM dicom_files").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0  # not created yet


def assert_consistent(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        missing_frames = conn.execute(
            "SELECT i.sop_instance_uid FROM dicom_instances i LEFT JOIN dicom_frames f "
            "ON f.sop_instance_uid = i.sop_instance_uid GROUP BY i.sop_instance_uid "
            "HAVING COUNT(f.frame_index) != MAX(i.number_of_frames)"
        ).fetchall()
        assert missing_frames == []
        wrong_counts = conn.execute(
            "SELECT s.series_uid FROM dicom_series s WHERE s.instance_count != "
            "(SELECT COUNT(*) FROM dicom_instances i WHERE i.series_uid = s.series_uid) "
            "OR s.frame_count != (SELECT COUNT(*) FROM dicom_frames f "
            "WHERE f.series_uid = s.series_uid) "
            "OR s.frame_count != (SELECT SUM(k.slices) FROM dicom_stacks k "
            "WHERE k.series_uid = s.series_uid)"
        ).fetchall()
        assert wrong_counts == []
        orphans = conn.execute(
            "SELECT f.path FROM dicom_files f WHERE f.status = 'ok' AND NOT EXISTS "
            "(SELECT 1 FROM dicom_instances i WHERE i.source_path = f.path)"
        ).fetchall()
        assert orphans == []
        unremembered = conn.execute(
            "SELECT i.source_path FROM dicom_instances i WHERE NOT EXISTS "
            "(SELECT 1 FROM dicom_files f WHERE f.path = i.source_path)"
        ).fetchall()
        assert unremembered == []
    finally:
        conn.close()


def snapshot(db_path: Path) -> dict[str, list]:
    conn = sqlite3.connect(db_path)
    try:
        return {
            "instances": conn.execute(
                "SELECT sop_instance_uid, series_uid, path, size, mtime_ns FROM dicom_instances "
                "ORDER BY 1"
            ).fetchall(),
            "frames": conn.execute(
                "SELECT * FROM dicom_frames ORDER BY sop_instance_uid, frame_index"
            ).fetchall(),
            "series": conn.execute("SELECT * FROM dicom_series ORDER BY 1").fetchall(),
            "stacks": conn.execute("SELECT * FROM dicom_stacks ORDER BY 1, 2").fetchall(),
            "files": conn.execute(
                "SELECT path, size, mtime_ns, status FROM dicom_files ORDER BY 1"
            ).fetchall(),
        }
    finally:
        conn.close()


@pytest.mark.slow
def test_sigkill_mid_index_leaves_a_consistent_store_and_rerun_completes(tmp_path):
    data = tmp_path / "data"
    write_many(data / "big", FILES)
    write_series(data / "small", slices=3, patient_id="PAT-2")
    (data / "notes.txt").write_text("not dicom")
    total = FILES + 4
    store = tmp_path / "store"
    db_path = store / "workstation.sqlite"

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    process = subprocess.Popen(
        [sys.executable, "-m", "workstation.cli", "--store", str(store), "index", str(data)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: the kill reaches the parsing workers too
    )
    try:
        deadline = time.monotonic() + 120
        while committed_files(db_path) == 0:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "indexing never committed a batch"
            time.sleep(0.005)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL

    done_before_rerun = committed_files(db_path)
    assert 0 < done_before_rerun < total, "the kill did not land mid-way"
    assert_consistent(db_path)

    summary = index_paths(store, [data])
    assert summary.files_seen == total
    assert summary.skipped_unchanged == done_before_rerun
    assert_consistent(db_path)

    clean = tmp_path / "clean"
    index_paths(clean, [data])
    resumed, fresh = snapshot(db_path), snapshot(clean / "workstation.sqlite")
    assert len(fresh["instances"]) == FILES + 3
    for table in ("instances", "frames", "series", "stacks", "files"):
        assert resumed[table] == fresh[table], table
