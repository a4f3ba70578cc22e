"""Which bundles and checkpoints the user trusts, kept in the store (area "models").

Loading a MONAI bundle runs its code (``$import`` lines, ``$`` expressions, ``_target_``
components, `scripts/`), and unpickling a checkpoint can too. So the host loads only what the user
has trusted with ``workstation models trust PATH``: that records the content hash of every file
(see `hashing`). Any later change to any file voids the trust, and the refusal names the file.
Checking trust never executes anything from the bundle.

Which store: the one a helper is given as `store_dir`; else, inside an analysis run, the run's
store (the host sets it around the run with `store_for_run`, so `workstation --store DIR run`
checks trust in DIR without the plugin passing it); else the default store.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from workstation.models.errors import ModelError, UntrustedModel
from workstation.models.hashing import content_digest
from workstation.models.review import read_json, review_bundle
from workstation.store import (
    default_store_dir,
    open_database,
    register_migrations,
    resolve_store_dir,
)

AREA = "models"

register_migrations(
    AREA,
    [
        """
        CREATE TABLE trusted_models (
            path TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            files_json TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            version TEXT NOT NULL DEFAULT '',
            trusted_at TEXT NOT NULL
        )
        """
    ],
)


@dataclass(frozen=True)
class TrustStatus:
    """One known model and whether its files still match what was trusted.

    `state` is "trusted", "changed" (a file differs: see `changes`), "missing" (path gone) or
    "unknown" (never trusted)."""

    path: Path
    state: str
    kind: str = ""
    name: str = ""
    version: str = ""
    trusted_at: str = ""
    changes: tuple[str, ...] = ()

    @property
    def trusted(self) -> bool:
        return self.state == "trusted"

    def as_dict(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "state": self.state,
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "trusted_at": self.trusted_at,
            "changes": list(self.changes),
        }


def canonical_path(path: str | Path) -> Path:
    return Path(path).expanduser().resolve()


def model_kind(path: Path) -> str:
    if path.is_dir():
        return "bundle"
    if path.is_file():
        return "checkpoint"
    raise ModelError(f"{path}: no such bundle folder or checkpoint file")


def _bundle_identity(path: Path) -> tuple[str, str]:
    """Name and version from configs/metadata.json (plain JSON), or the folder name."""
    metadata = path / "configs" / "metadata.json"
    if path.is_dir() and metadata.is_file():
        try:
            content = read_json(metadata)
        except ModelError:
            return path.name, ""
        if isinstance(content, dict):
            return str(content.get("name") or path.name), str(content.get("version") or "")
    return path.name, ""


_RUN_STORE: ContextVar[Path | None] = ContextVar("workstation_models_run_store", default=None)


@contextmanager
def store_for_run(store_dir: str | os.PathLike[str] | None) -> Iterator[None]:
    """Inside the block (in this thread or task), helpers given no `store_dir` check trust in
    `store_dir` (None: the default store). The plugin host wraps every analysis run in it."""
    token = _RUN_STORE.set(Path(store_dir).expanduser() if store_dir else None)
    try:
        yield
    finally:
        _RUN_STORE.reset(token)


def models_store_dir(store_dir: str | os.PathLike[str] | None = None) -> Path:
    """The store trust is checked in: `store_dir` when given, else the running analysis's
    store (`store_for_run`), else the default store."""
    if store_dir:
        return resolve_store_dir(store_dir)
    return _RUN_STORE.get() or default_store_dir()


def _store(store_dir: str | Path | None) -> Path:
    return models_store_dir(store_dir)


def trust_command(path: Path, store_dir: str | Path | None = None) -> str:
    """The exact command that trusts `path` in the store in use (`models_store_dir`), with
    --store when that is not the default store."""
    store = _store(store_dir)
    default = _same_path(store, default_store_dir())
    store_flag = "" if default else f"--store {shlex.quote(str(store.absolute()))} "
    return f"workstation {store_flag}models trust {shlex.quote(str(path))}"


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.expanduser().resolve() == b.expanduser().resolve()
    except OSError:
        return a == b


def trust(path: str | Path, store_dir: str | Path | None = None) -> TrustStatus:
    """Record `path` (bundle folder or checkpoint file) as trusted with its current content."""
    path = canonical_path(path)
    kind = model_kind(path)
    digest = content_digest(path)
    name, version = _bundle_identity(path)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    db = open_database(_store(store_dir), AREA)
    try:
        with db.transaction() as conn:
            conn.execute(
                "INSERT INTO trusted_models"
                " (path, kind, sha256, files_json, name, version, trusted_at)"
                " VALUES(?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET kind=excluded.kind,"
                " sha256=excluded.sha256, files_json=excluded.files_json, name=excluded.name,"
                " version=excluded.version, trusted_at=excluded.trusted_at",
                (str(path), kind, digest.sha256, json.dumps(digest.files), name, version, now),
            )
    finally:
        db.close()
    return TrustStatus(path, "trusted", kind, name, version, now)


def untrust(path: str | Path, store_dir: str | Path | None = None) -> bool:
    """Forget a trusted path; True if it was known. Works when the path no longer exists."""
    db = open_database(_store(store_dir), AREA)
    try:
        with db.transaction() as conn:
            removed = conn.execute(
                "DELETE FROM trusted_models WHERE path IN (?, ?)",
                (str(canonical_path(path)), str(Path(path).expanduser().absolute())),
            ).rowcount
    finally:
        db.close()
    return removed > 0


def _status_from_row(row, verify: bool) -> TrustStatus:
    path = Path(row["path"])
    base = dict(
        kind=row["kind"], name=row["name"], version=row["version"], trusted_at=row["trusted_at"]
    )
    if not path.exists():
        return TrustStatus(path, "missing", **base)
    if not verify:
        return TrustStatus(path, "trusted", **base)
    digest = content_digest(path)
    if digest.sha256 == row["sha256"]:
        return TrustStatus(path, "trusted", **base)
    changes = digest.changes_since(json.loads(row["files_json"])) or ["content changed"]
    return TrustStatus(path, "changed", changes=tuple(changes), **base)


def trust_status(path: str | Path, store_dir: str | Path | None = None) -> TrustStatus:
    """Whether `path` is trusted now (re-hashes its files); never executes anything from it."""
    path = canonical_path(path)
    db = open_database(_store(store_dir), AREA)
    try:
        rows = db.query("SELECT * FROM trusted_models WHERE path = ?", (str(path),))
    finally:
        db.close()
    if not rows:
        return TrustStatus(path, "unknown" if path.exists() else "missing")
    return _status_from_row(rows[0], verify=True)


def is_trusted(path: str | Path, store_dir: str | Path | None = None) -> bool:
    return trust_status(path, store_dir).trusted


def list_trusted(store_dir: str | Path | None = None, verify: bool = True) -> list[TrustStatus]:
    """Every known model, sorted by path; `verify` re-hashes files to report changes."""
    db = open_database(_store(store_dir), AREA)
    try:
        rows = db.query("SELECT * FROM trusted_models ORDER BY path")
    finally:
        db.close()
    return [_status_from_row(row, verify) for row in rows]


def require_trusted(path: str | Path, store_dir: str | Path | None = None) -> TrustStatus:
    """Raise `UntrustedModel` (with the review and the exact trust command) unless trusted."""
    status = trust_status(path, store_dir)
    if status.trusted:
        return status
    if status.state == "missing":
        raise ModelError(f"{status.path}: no such bundle folder or checkpoint file")
    command = trust_command(status.path, store_dir)
    what = "bundle" if status.path.is_dir() else "checkpoint"
    if status.state == "changed":
        message = (
            f"The {what} {status.path} was trusted, but its files changed since "
            f"({'; '.join(status.changes)}), so it is no longer trusted. Loading it runs code from "
            f"it. Review the change, then trust it again with:\n    {command}"
        )
    else:
        message = (
            f"The {what} {status.path} is not trusted. Loading it runs code from it (config "
            f"expressions, imports, scripts, pickled objects), so the workstation refuses it until "
            f"you have reviewed it and trusted it with:\n    {command}"
        )
    review = review_bundle(status.path).render() if status.path.is_dir() else ""
    raise UntrustedModel(message, review)


def trusted_digest(path: str | Path, store_dir: str | Path | None = None) -> str | None:
    """The content hash recorded when `path` was trusted, or None; reads the store only (no
    hashing), so the model cache can ask it cheaply before reusing a model loaded on trust."""
    db = open_database(_store(store_dir), AREA)
    try:
        rows = db.query(
            "SELECT sha256 FROM trusted_models WHERE path = ?", (str(canonical_path(path)),)
        )
    finally:
        db.close()
    return str(rows[0]["sha256"]) if rows else None
