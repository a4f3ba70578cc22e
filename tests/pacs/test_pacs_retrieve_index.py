"""What a C-GET indexes is what indexing the retrieved files from disk gives, and stays current.

The getscu path indexes each object from the header it built while checking the file (no second
read); the pynetdicom path lets the index read the files. Either way the store's index must hold
the same rows as `index_paths` over the same files, and `workstation index` over the store's
files afterwards must find every one of them unchanged.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from workstation.cli import main
from workstation.dicom.index import index_paths
from workstation.dicom.net import NodeStore, retrieve
from workstation.dicom.net.receive import FILES_DIR

pytestmark = pytest.mark.network
OUR_AE = "WSTEST"


def _tables(store: Path) -> dict[str, list[tuple]]:
    """The DICOM index's tables, rows sorted, without time stamps and problem ids."""
    conn = sqlite3.connect(store / "workstation.sqlite")
    try:
        names = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'dicom_%'"
        ).fetchall()
        found = {}
        for (name,) in sorted(names):
            columns = [r[1] for r in conn.execute(f"PRAGMA table_info({name})")]
            kept = [c for c in columns if c not in ("indexed_at", "detected_at", "id")]
            rows = conn.execute(f"SELECT {', '.join(kept)} FROM {name}").fetchall()
            found[name] = sorted(rows, key=repr)
        return found
    finally:
        conn.close()


def test_retrieved_study_is_indexed_as_index_paths_would_and_stays_unchanged(
    tmp_path, pacs, capsys, retrieval_backend
):
    store = tmp_path / "store"
    nodes = NodeStore(store)
    node = nodes.add("orthanc", pacs.orthanc.ae_title, "127.0.0.1", pacs.orthanc.dicom_port)
    nodes.close()
    report = retrieve(store, node, pacs.study_uid, ae_title=OUR_AE, backend=retrieval_backend)
    assert report.complete and len(report.received) == 10, report.to_dict()
    assert report.bytes == sum(p.stat().st_size for p in report.paths)

    retrieved = _tables(store)
    reference = tmp_path / "reference"
    index_paths(reference, [store / FILES_DIR])
    assert retrieved == _tables(reference)
    assert len(retrieved["dicom_instances"]) == 10 and len(retrieved["dicom_frames"]) == 10

    # `workstation index` over the store's folder later: nothing to read again, nothing changes
    assert main(["--store", str(store), "index", str(store / FILES_DIR), "--json"]) == 0
    out = capsys.readouterr().out
    assert '"skipped_unchanged": 10' in out and '"instances_added": 0' in out
    assert _tables(store) == retrieved
