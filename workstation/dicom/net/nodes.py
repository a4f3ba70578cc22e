"""Remote DICOM nodes, local settings and the audit log, kept in the store's "pacs" area.

A node is a peer the user registered by name (a PACS, a modality, another workstation). The
listener accepts associations only from registered nodes' AE titles unless told otherwise, so the
node table doubles as the allow-list. Every export and send is written to the audit log (what,
where, when) so a hospital can answer "what left this machine"; the audit log never holds patient
names or IDs, only UIDs, counts and destinations.
"""

from __future__ import annotations

import getpass
import json
import re
import secrets
import socket
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from workstation.store import Database, open_database, register_migrations

AREA = "pacs"

register_migrations(
    AREA,
    [
        """
        CREATE TABLE pacs_nodes (
            name TEXT PRIMARY KEY,
            ae_title TEXT NOT NULL,
            host TEXT NOT NULL,
            port INTEGER NOT NULL,
            added_at TEXT NOT NULL
        );
        CREATE TABLE pacs_audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            action TEXT NOT NULL,
            destination TEXT NOT NULL,
            what TEXT NOT NULL,
            instances INTEGER NOT NULL,
            deidentified INTEGER NOT NULL,
            outcome TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE pacs_settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )
        """,
        # who sent or exported (OS user, computer), and the replacement UIDs of a
        # de-identified copy so an entry can be matched to what arrived at the destination
        """
        ALTER TABLE pacs_audit ADD COLUMN user TEXT NOT NULL DEFAULT '';
        ALTER TABLE pacs_audit ADD COLUMN computer TEXT NOT NULL DEFAULT '';
        ALTER TABLE pacs_audit ADD COLUMN deidentified_as TEXT NOT NULL DEFAULT ''
        """,
    ],
)

_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # PS3.5 AE: 16 chars, no backslash


class NodeError(ValueError):
    """A node that cannot be added, found or used; the message says which and why."""


@dataclass(frozen=True)
class Node:
    name: str
    ae_title: str
    host: str
    port: int

    def to_dict(self) -> dict:
        return asdict(self)


def validate_ae_title(ae_title: str) -> str:
    """Return the AE title stripped, or raise NodeError naming what is wrong with it."""
    value = ae_title.strip()
    if not _AE_TITLE.match(value):
        raise NodeError(
            f"AE title {ae_title!r} is not valid: 1 to 16 printable characters, no backslash"
        )
    return value


def open_pacs_database(store_dir: Path) -> Database:
    return open_database(Path(store_dir), AREA)


class NodeStore:
    """Registered peers by name."""

    def __init__(self, store_dir: Path) -> None:
        self.db = open_pacs_database(store_dir)

    def close(self) -> None:
        self.db.close()

    def add(self, name: str, ae_title: str, host: str, port: int) -> Node:
        if not name.strip():
            raise NodeError("a node needs a name")
        if not 1 <= int(port) <= 65535:
            raise NodeError(f"port {port} is out of range 1-65535")
        if not host.strip():
            raise NodeError("a node needs a host name or address")
        if host.strip().startswith("-") or any(c.isspace() for c in host.strip()):
            raise NodeError(f"host {host!r} is not a host name or address")
        node = Node(name.strip(), validate_ae_title(ae_title), host.strip(), int(port))
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM pacs_nodes WHERE name = ?", (node.name,)).fetchone():
                raise NodeError(f"a node named {node.name!r} already exists; remove it first")
            conn.execute(
                "INSERT INTO pacs_nodes(name, ae_title, host, port, added_at) VALUES (?,?,?,?,?)",
                (node.name, node.ae_title, node.host, node.port, _now()),
            )
        return node

    def remove(self, name: str) -> None:
        with self.db.transaction() as conn:
            if conn.execute("DELETE FROM pacs_nodes WHERE name = ?", (name,)).rowcount == 0:
                raise NodeError(f"no node named {name!r}")

    def get(self, name: str) -> Node:
        rows = self.db.query("SELECT * FROM pacs_nodes WHERE name = ?", (name,))
        if not rows:
            known = ", ".join(n.name for n in self.all()) or "none registered"
            raise NodeError(f"no node named {name!r} (known: {known})")
        return _node(rows[0])

    def all(self) -> list[Node]:
        return [_node(row) for row in self.db.query("SELECT * FROM pacs_nodes ORDER BY name")]

    def ae_titles(self) -> set[str]:
        return {row["ae_title"] for row in self.db.query("SELECT ae_title FROM pacs_nodes")}


def _node(row) -> Node:
    return Node(row["name"], row["ae_title"], row["host"], int(row["port"]))


@dataclass(frozen=True)
class AuditEntry:
    at: str
    action: str  # "export" or "send"
    destination: str  # an absolute folder or "NODE (AE@host:port)"
    what: str  # series UIDs (JSON list), as stored (before de-identification)
    instances: int
    deidentified: bool
    outcome: str  # "ok", "partial", "failed"
    detail: str = ""
    user: str = ""  # the OS user who ran it
    computer: str = ""  # this computer's host name
    deidentified_as: str = ""  # JSON {"studies": [...], "series": [...]}: replacement UIDs

    def to_dict(self) -> dict:
        data = asdict(self)
        data["what"] = _json_or_text(self.what)
        data["deidentified_as"] = _json_or_text(self.deidentified_as) or {}
        return data

    def describe(self) -> str:
        """One line for `workstation pacs audit`, then the UIDs indented below it."""
        series = _json_or_text(self.what)
        count = len(series) if isinstance(series, list) else 1
        flags = ", de-identified" if self.deidentified else ""
        who = f" by {self.user}" if self.user else ""
        where = f"@{self.computer}" if self.computer and self.user else ""
        lines = [
            f"{self.at}  {self.action:6} {self.outcome:7} {self.instances} instance(s) of "
            f"{count} series{flags}{who}{where} -> {self.destination}"
        ]
        if self.detail:
            lines.append(f"    detail: {self.detail}")
        for uid in series if isinstance(series, list) else [series]:
            lines.append(f"    series {uid}")
        replaced = _json_or_text(self.deidentified_as) or {}
        if isinstance(replaced, dict):
            for uid in replaced.get("studies", []):
                lines.append(f"    de-identified as study {uid}")
        return "\n".join(lines)


def _json_or_text(text: str):
    if not text:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def record_audit(store_dir: Path, entry: AuditEntry) -> None:
    """Append one line to the store's audit log; commits before returning."""
    db = open_pacs_database(store_dir)
    try:
        with db.transaction() as conn:
            conn.execute(
                "INSERT INTO pacs_audit(at, action, destination, what, instances, deidentified,"
                " outcome, detail, user, computer, deidentified_as)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    entry.at,
                    entry.action,
                    entry.destination,
                    entry.what,
                    entry.instances,
                    int(entry.deidentified),
                    entry.outcome,
                    entry.detail,
                    entry.user,
                    entry.computer,
                    entry.deidentified_as,
                ),
            )
    finally:
        db.close()


def audit_log(store_dir: Path, limit: int | None = None) -> list[AuditEntry]:
    """The audit log, oldest first; with `limit`, only the last `limit` entries."""
    db = open_pacs_database(store_dir)
    try:
        if limit is None:
            rows = db.query("SELECT * FROM pacs_audit ORDER BY id")
        else:
            rows = db.query("SELECT * FROM pacs_audit ORDER BY id DESC LIMIT ?", (int(limit),))
            rows = list(reversed(rows))
    finally:
        db.close()
    return [
        AuditEntry(
            r["at"],
            r["action"],
            r["destination"],
            r["what"],
            int(r["instances"]),
            bool(r["deidentified"]),
            r["outcome"],
            r["detail"],
            r["user"],
            r["computer"],
            r["deidentified_as"],
        )
        for r in rows
    ]


def deidentification_secret(store_dir: Path) -> str:
    """A random secret made once per store: it seeds replacement UIDs, names and date shifts so
    every export or send from this store maps a study to the same de-identified study, while
    nobody without the store can reverse or recompute the mapping."""
    db = open_pacs_database(store_dir)
    try:
        with db.transaction() as conn:
            row = conn.execute(
                "SELECT value FROM pacs_settings WHERE key = 'deidentification_secret'"
            ).fetchone()
            if row:
                return str(row[0])
            value = secrets.token_hex(32)
            conn.execute(
                "INSERT INTO pacs_settings(key, value) VALUES ('deidentification_secret', ?)",
                (value,),
            )
            return value
    finally:
        db.close()


def audit_entry(
    action: str,
    destination: str,
    series_uids: list[str],
    instances: int,
    deidentified: bool,
    outcome: str,
    detail: str = "",
    replacements: dict[str, list[str]] | None = None,
) -> AuditEntry:
    """An entry stamped now, with the OS user and this computer's name. `replacements` are
    the de-identified copy's UIDs ({"studies": [...], "series": [...]})."""
    return AuditEntry(
        _now(),
        action,
        destination,
        json.dumps(series_uids),
        instances,
        deidentified,
        outcome,
        detail,
        _user(),
        socket.gethostname(),
        json.dumps(replacements) if replacements else "",
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name (some containers, services)
        return ""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
