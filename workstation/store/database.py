"""The store's SQLite database: one file, WAL mode, explicit transactions, per-area migrations.

Each area of the workstation (dicom index, analysis runs, records, PACS nodes, ...) owns its
tables and registers an ordered list of migrations under its own name. The applied version of each
area is kept in the `schema_versions` table, so areas evolve independently and an old store is
upgraded in place when it is opened. Killing the process mid-write leaves the last committed state:
every batch of writes runs inside `transaction()`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

Migration = Callable[[sqlite3.Connection], None] | str

_MIGRATIONS: dict[str, list[Migration]] = {}
DATABASE_NAME = "workstation.sqlite"


def register_migrations(area: str, migrations: list[Migration]) -> None:
    """Declare an area's schema as ordered migrations (SQL scripts or callables). Append only:
    never edit a migration that has shipped, add a new one."""
    _MIGRATIONS[area] = list(migrations)


class Database:
    """A connection to the store database, safe to share between threads of one process."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self.conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute("PRAGMA busy_timeout=30000")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_versions "
            "(area TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic batch: everything inside commits together or not at all."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self.conn.execute(sql, params).fetchall()

    def schema_version(self, area: str) -> int:
        row = self.query("SELECT version FROM schema_versions WHERE area = ?", (area,))
        return int(row[0]["version"]) if row else 0

    def migrate(self, area: str) -> None:
        """Apply the area's pending migrations, each in its own transaction."""
        migrations = _MIGRATIONS.get(area)
        if migrations is None:
            raise KeyError(f"no migrations registered for store area {area!r}")
        current = self.schema_version(area)
        if current > len(migrations):
            raise RuntimeError(
                f"{self.path}: store area {area!r} is at schema {current}, newer than this "
                f"workstation knows ({len(migrations)}); upgrade the workstation"
            )
        for version, migration in enumerate(migrations[current:], start=current + 1):
            with self.transaction() as conn:
                if isinstance(migration, str):
                    for statement in migration.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                else:
                    migration(conn)
                conn.execute(
                    "INSERT INTO schema_versions(area, version) VALUES(?, ?) "
                    "ON CONFLICT(area) DO UPDATE SET version = excluded.version",
                    (area, version),
                )

    def close(self) -> None:
        with self._lock:
            self.conn.close()


def open_database(store_dir: Path, *areas: str) -> Database:
    """Open (creating if needed) the store database and bring the named areas up to date."""
    db = Database(Path(store_dir) / DATABASE_NAME)
    for area in areas:
        db.migrate(area)
    return db
