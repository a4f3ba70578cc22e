"""The history of analysis runs, kept in the store's "runs" area.

A run is written when it starts (outcome "running") and updated when it ends, so a run whose
host was killed stays visible as "running" with its start time instead of vanishing. Parameters,
inputs and outputs are JSON; inputs hold identifiers only (UIDs, paths, shape), never pixels.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workstation.store import open_database, register_migrations

AREA = "runs"
RUNNING = "running"

register_migrations(
    AREA,
    [
        """
        CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            analysis_id TEXT NOT NULL,
            analysis_version TEXT NOT NULL DEFAULT '',
            plugin TEXT NOT NULL DEFAULT '',
            distribution TEXT NOT NULL DEFAULT '',
            parameters TEXT NOT NULL DEFAULT '{}',
            inputs TEXT NOT NULL DEFAULT '{}',
            device TEXT NOT NULL DEFAULT '',
            mode TEXT NOT NULL DEFAULT '',
            started_at TEXT NOT NULL,
            duration_s REAL,
            outcome TEXT NOT NULL,
            error TEXT,
            traceback TEXT,
            out_dir TEXT,
            outputs TEXT NOT NULL DEFAULT '[]'
        );
        CREATE INDEX runs_started ON runs(started_at);
        CREATE INDEX runs_analysis ON runs(analysis_id)
        """
    ],
)


@dataclass
class RunRecord:
    """One row of the run history."""

    run_id: str
    analysis_id: str
    started_at: str
    outcome: str = RUNNING
    analysis_version: str = ""
    plugin: str = ""
    distribution: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    device: str = ""
    mode: str = ""
    duration_s: float | None = None
    error: str | None = None
    traceback: str | None = None
    out_dir: str | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


_JSON_FIELDS = ("parameters", "inputs", "outputs")


class RunStore:
    """Reads and writes run records in the store at `store_dir`."""

    def __init__(self, store_dir: str | os.PathLike[str]) -> None:
        self.store_dir = Path(store_dir)
        self.db = open_database(self.store_dir, AREA)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def save(self, record: RunRecord) -> None:
        """Insert or replace the record (called at start and again at the end)."""
        row = record.to_dict()
        for name in _JSON_FIELDS:
            row[name] = json.dumps(row[name], default=str)
        columns = ", ".join(row)
        marks = ", ".join(f":{name}" for name in row)
        with self.db.transaction() as conn:
            conn.execute(f"INSERT OR REPLACE INTO runs ({columns}) VALUES ({marks})", row)

    def get(self, run_id: str) -> RunRecord | None:
        rows = self.db.query("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        return _record(rows[0]) if rows else None

    def list(self, limit: int | None = None, analysis_id: str | None = None) -> list[RunRecord]:
        """Newest first."""
        sql = "SELECT * FROM runs"
        params: tuple = ()
        if analysis_id:
            sql += " WHERE analysis_id = ?"
            params = (analysis_id,)
        sql += " ORDER BY started_at DESC, rowid DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [_record(row) for row in self.db.query(sql, params)]


def _record(row: Any) -> RunRecord:
    data = dict(row)
    for name in _JSON_FIELDS:
        data[name] = json.loads(data[name] or ("[]" if name == "outputs" else "{}"))
    return RunRecord(**data)
