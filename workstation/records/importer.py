"""`records import`: files and folders of FHIR (bundles, NDJSON) and CSV labs into the store.

One transaction per file: a file either lands whole (minus the resources reported broken) or, when
it cannot be read at all, not at all, and nothing stored before changes. Resources are identified
by type + id (or type + identifier), so importing the same data again adds nothing and a changed
resource replaces its old rows. References to patients and encounters by `Type/id` may point into
another file (bulk NDJSON exports split by type); they are checked once the whole run is stored.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from workstation.records import schema
from workstation.records.csv_labs import CsvMapping, read_lab_rows
from workstation.records.fhir_parse import (
    KEPT_TYPES,
    ParsedResource,
    Resolver,
    is_fhir_type,
    parse_resource,
)
from workstation.records.problems import ImportProblem, ResourceProblem
from workstation.records.sources import (
    CSV_SUFFIXES,
    FileProblem,
    expand_paths,
    open_fhir_file,
)
from workstation.store.database import Database, open_database

MAX_PROBLEMS_PER_FILE = 1000
Progress = Callable[[int, int, Path], None]


@dataclass
class FileResult:
    """What one file contributed, and what was wrong with it."""

    path: str
    kind: str = ""
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    ignored: Counter[str] = field(default_factory=Counter)
    problems: list[ImportProblem] = field(default_factory=list)
    more_problems: int = 0
    error: str | None = None  # the whole file was refused; nothing from it was stored
    codes_seen: set[str] = field(default_factory=set, repr=False)  # records_codes rows written

    def report(self, location: str, resource: str, severity: str, reason: str) -> None:
        if severity == "error":
            self.failed += 1
        if len(self.problems) < MAX_PROBLEMS_PER_FILE:
            self.problems.append(ImportProblem(self.path, location, resource, severity, reason))
        else:
            self.more_problems += 1

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "kind": self.kind,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "ignored": dict(self.ignored),
            "error": self.error,
            "problems": [p.to_dict() for p in self.problems],
            "more_problems": self.more_problems,
        }


@dataclass
class ImportSummary:
    files: list[FileResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # files in folders that are not FHIR/CSV
    dangling: list[ImportProblem] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(getattr(f, name) for f in self.files)

    @property
    def ok(self) -> bool:
        return not any(f.error or f.failed for f in self.files) and not self.dangling

    def to_dict(self) -> dict:
        return {
            "added": self.total("added"),
            "updated": self.total("updated"),
            "unchanged": self.total("unchanged"),
            "failed": self.total("failed"),
            "files": [f.to_dict() for f in self.files],
            "skipped": self.skipped,
            "dangling": [p.to_dict() for p in self.dangling],
        }


def import_paths(
    store_dir: Path,
    paths: Iterable[str | Path],
    *,
    csv_mapping: CsvMapping | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import files and folders into the store's records area; never raises for bad input."""
    files, skipped = expand_paths([Path(p) for p in paths])
    summary = ImportSummary(skipped=[str(p) for p in skipped])
    db = open_database(Path(store_dir), schema.AREA)
    try:
        for done, path in enumerate(files):
            if progress is not None:
                progress(done, len(files), path)
            summary.files.append(import_file(db, path, csv_mapping or CsvMapping()))
        summary.dangling = _dangling_references(db, [f.path for f in summary.files])
    finally:
        db.close()
    return summary


def import_file(db: Database, path: Path, csv_mapping: CsvMapping) -> FileResult:
    """Import one file in one transaction; a refused file leaves the store as it was."""
    result = FileResult(str(path.resolve()) if path.exists() else str(path))
    now = datetime.now(UTC).isoformat(timespec="seconds")
    if not path.is_file():
        result.error = "no such file" if not path.exists() else "not a regular file"
        _record_file_error(db, result, now)
        return result
    try:
        with db.transaction() as conn:
            conn.execute("DELETE FROM records_problems WHERE source = ?", (result.path,))
            if path.suffix.lower() in CSV_SUFFIXES:
                result.kind = "csv"
                _import_csv(conn, path, csv_mapping, result, now)
            else:
                _import_fhir(conn, path, result, now)
            conn.executemany(
                "INSERT INTO records_problems(source, location, resource, severity, reason, "
                "detected_at) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (p.source, p.location, p.resource, p.severity, p.reason, now)
                    for p in result.problems
                ],
            )
    except (FileProblem, OSError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        _reset_counts(result)
        result.error = reason
        _record_file_error(db, result, now)
    return result


def _reset_counts(result: FileResult) -> None:
    result.added = result.updated = result.unchanged = result.failed = 0
    result.ignored.clear()
    result.codes_seen.clear()
    result.problems.clear()
    result.more_problems = 0


def _record_file_error(db: Database, result: FileResult, now: str) -> None:
    with db.transaction() as conn:
        conn.execute("DELETE FROM records_problems WHERE source = ?", (result.path,))
        conn.execute(
            "INSERT INTO records_problems(source, location, resource, severity, reason, "
            "detected_at) VALUES (?, '', '', 'error', ?, ?)",
            (result.path, result.error, now),
        )


def make_resolver(url_map: dict[str, tuple[str, str]]) -> Resolver:
    """Resolve `urn:uuid:` full URLs within the bundle and `Type/id` (relative or absolute)."""

    def resolve(reference: str) -> tuple[str, str] | None:
        if reference in url_map:
            return url_map[reference]
        if reference.startswith(("urn:uuid:", "urn:oid:")):
            raise ResourceProblem(f"reference {reference!r} points to nothing in this bundle")
        if reference.startswith("#") or "?" in reference:
            return None  # contained or conditional references: not followed
        parts = reference.rstrip("/").split("/")
        if len(parts) >= 4 and parts[-2] == "_history":
            parts = parts[:-2]
        if len(parts) >= 2 and is_fhir_type(parts[-2]) and parts[-1]:
            return (parts[-2], parts[-1])
        raise ResourceProblem(f"reference {reference!r} is not Type/id or a urn:uuid: full URL")

    return resolve


def _import_fhir(conn: sqlite3.Connection, path: Path, result: FileResult, now: str) -> None:
    document = open_fhir_file(path)
    result.kind = document.kind
    resolve = make_resolver(document.url_map)
    for entry in document.entries:
        if entry.raw is None:
            result.report(entry.location, "", "error", entry.error or "unreadable entry")
            continue
        resource_type = entry.raw.get("resourceType")
        label = f"{resource_type}/{entry.raw['id']}" if entry.raw.get("id") else ""
        if not isinstance(resource_type, str):
            result.report(entry.location, label, "error", "not a FHIR resource: no resourceType")
            continue
        if resource_type not in KEPT_TYPES:
            if is_fhir_type(resource_type):
                result.ignored[resource_type] += 1
            else:
                result.report(
                    entry.location,
                    label,
                    "error",
                    f"resourceType {resource_type!r} is not a FHIR R4 resource type",
                )
            continue
        fallback_id = entry.full_url.rsplit(":", 1)[-1] if entry.full_url else None
        if fallback_id and entry.full_url and not entry.full_url.startswith("urn:uuid:"):
            fallback_id = entry.full_url.rstrip("/").rsplit("/", 1)[-1]
        try:
            parsed = parse_resource(entry.raw, resolve, fallback_id)
        except ResourceProblem as problem:
            result.report(entry.location, label, "error", str(problem))
            continue
        _store_parsed(conn, parsed, result, entry.location, now)


def _import_csv(
    conn: sqlite3.Connection, path: Path, mapping: CsvMapping, result: FileResult, now: str
) -> None:
    known: dict[str, str | None] = {}
    for location, parsed in read_lab_rows(path, mapping):
        if isinstance(parsed, str):
            result.report(location, "", "error", parsed)
            continue
        given = parsed.patient_id or ""
        if given not in known:
            known[given] = find_patient_id(conn, given)
        if known[given] is None:
            result.report(
                location,
                "",
                "error",
                f"patient {given!r} is not in the records store (import the patient first)",
            )
            continue
        parsed.patient_id = known[given]
        _store_parsed(conn, parsed, result, location, now)


def find_patient_id(conn: sqlite3.Connection | Database, given: str) -> str | None:
    """The FHIR id of the patient whose id, or else whose single matching identifier, is `given`."""
    query = (
        conn.query
        if isinstance(conn, Database)
        else (lambda sql, params: conn.execute(sql, params).fetchall())
    )
    if query("SELECT 1 FROM records_patients WHERE patient_id = ?", (given,)):
        return given
    rows = query("SELECT DISTINCT patient_id FROM records_identifiers WHERE value = ?", (given,))
    return rows[0][0] if len(rows) == 1 else None


def _store_parsed(
    conn: sqlite3.Connection, parsed: ParsedResource, result: FileResult, location: str, now: str
) -> None:
    label = f"{parsed.resource_type}/{parsed.fhir_id}"
    for warning in parsed.warnings:
        result.report(location, label, "warning", warning)
    row = conn.execute(
        "SELECT resource_key, content_hash FROM records_resources WHERE identity = ?",
        (parsed.identity,),
    ).fetchone()
    if row is not None and row[1] == parsed.content_hash:
        result.unchanged += 1
        return
    if row is not None:
        conn.execute("DELETE FROM records_resources WHERE resource_key = ?", (row[0],))
        result.updated += 1
    else:
        result.added += 1
    key = conn.execute(
        "INSERT INTO records_resources(resource_type, fhir_id, identity, patient_id, encounter_id, "
        "content_hash, source, location, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            parsed.resource_type,
            parsed.fhir_id,
            parsed.identity,
            parsed.patient_id,
            parsed.encounter_id,
            parsed.content_hash,
            result.path,
            location,
            now,
        ),
    ).lastrowid
    if parsed.patient is not None:
        p = parsed.patient
        conn.execute(
            "INSERT OR REPLACE INTO records_patients(patient_id, resource_key, family, given, "
            "birth_date, sex, deceased, race, ethnicity, synthetic) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                parsed.fhir_id,
                key,
                p["family"],
                p["given"],
                p["birth_date"],
                p["sex"],
                p["deceased"],
                p["race"],
                p["ethnicity"],
                p["synthetic"],
            ),
        )
        conn.execute("DELETE FROM records_identifiers WHERE patient_id = ?", (parsed.fhir_id,))
        conn.executemany(
            "INSERT INTO records_identifiers(resource_key, patient_id, system, type_code, value) "
            "VALUES (?, ?, ?, ?, ?)",
            [(key, parsed.fhir_id, *identifier) for identifier in parsed.identifiers],
        )
    if parsed.observations:
        conn.executemany(
            "INSERT INTO records_observations(resource_key, patient_id, code, system, display, "
            "panel_code, time, t, kind, value, unit, value_text) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(key, parsed.patient_id, *row) for row in parsed.observations],
        )
        new_codes = [row[:4] for row in parsed.observations if row[0] not in result.codes_seen]
        if new_codes:
            conn.executemany(
                "INSERT INTO records_codes(code, system, display, panel_code) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(code) DO UPDATE SET system = excluded.system, "
                "display = excluded.display, panel_code = excluded.panel_code "
                "WHERE records_codes.display = '' AND excluded.display != ''",
                new_codes,
            )
            result.codes_seen.update(row[0] for row in new_codes)
    if parsed.events:
        conn.executemany(
            "INSERT INTO records_events(resource_key, patient_id, kind, code, system, display, "
            "status, start, start_t, end, end_t) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(key, parsed.patient_id, *row) for row in parsed.events],
        )
    if parsed.studies:
        conn.executemany(
            "INSERT INTO records_studies(resource_key, patient_id, study_uid, started, started_t, "
            "modalities, description, series_count, instance_count) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(key, parsed.patient_id, *row) for row in parsed.studies],
        )


def _dangling_references(db: Database, sources: list[str]) -> list[ImportProblem]:
    """Resources stored by this run whose patient or encounter is not in the store."""
    problems: list[ImportProblem] = []
    for start in range(0, len(sources), 500):
        chunk = sources[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        rows = db.query(
            f"SELECT r.source, r.location, r.resource_type, r.fhir_id, 'Patient' AS target, "
            f"r.patient_id AS target_id FROM records_resources r WHERE r.source IN ({marks}) "
            "AND r.resource_type != 'Patient' AND r.patient_id IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM records_patients p WHERE p.patient_id = r.patient_id) "
            "UNION ALL "
            f"SELECT r.source, r.location, r.resource_type, r.fhir_id, 'Encounter', "
            f"r.encounter_id FROM records_resources r WHERE r.source IN ({marks}) "
            "AND r.encounter_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM records_resources e "
            "WHERE e.resource_type = 'Encounter' AND e.fhir_id = r.encounter_id) "
            f"LIMIT {MAX_PROBLEMS_PER_FILE}",
            (*chunk, *chunk),
        )
        problems.extend(
            ImportProblem(
                row["source"],
                row["location"],
                f"{row['resource_type']}/{row['fhir_id']}",
                "warning",
                f"references {row['target']}/{row['target_id']}, which is not in the store",
            )
            for row in rows
        )
    return problems
