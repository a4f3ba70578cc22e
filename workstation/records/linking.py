"""Links from records patients to imaging: DICOM PatientID matching an identifier, and
ImagingStudy resources matching indexed studies by Study Instance UID.

The dicom area's tables belong to the DICOM index; they are read here, never written, and a store
that has no images yet (no `dicom_patients` table) simply has no links.
"""

from __future__ import annotations

from dataclasses import dataclass

from workstation.store.database import Database

DICOM_TABLES = ("dicom_patients", "dicom_studies")


@dataclass(frozen=True)
class LinkRule:
    """Which patient identifiers may equal a DICOM PatientID: by v2-0203 type code (default the
    medical record number, "MR") or by identifier system. An identifier counts if either matches."""

    types: tuple[str, ...] = ("MR",)
    systems: tuple[str, ...] = ()

    @classmethod
    def from_options(cls, types: list[str] | None, systems: list[str] | None) -> LinkRule:
        if not types and not systems:
            return cls()
        return cls(tuple(types or ()), tuple(systems or ()))

    def sql(self) -> tuple[str, tuple[str, ...]]:
        """A WHERE condition on records_identifiers (alias i) and its parameters."""
        clauses, params = [], []
        if self.types:
            clauses.append(f"i.type_code IN ({', '.join('?' for _ in self.types)})")
            params.extend(self.types)
        if self.systems:
            clauses.append(f"i.system IN ({', '.join('?' for _ in self.systems)})")
            params.extend(self.systems)
        return ("(" + " OR ".join(clauses or ["0"]) + ")", tuple(params))


def has_dicom_index(db: Database) -> bool:
    marks = ", ".join("?" for _ in DICOM_TABLES)
    rows = db.query(
        f"SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ({marks})", DICOM_TABLES
    )
    return len(rows) == len(DICOM_TABLES)


def linking_identifiers(db: Database, patient_id: str, rule: LinkRule) -> list[str]:
    """The patient's identifier values that count as a DICOM PatientID under `rule`."""
    condition, params = rule.sql()
    rows = db.query(
        "SELECT DISTINCT i.value FROM records_identifiers i "
        f"WHERE i.patient_id = ? AND {condition}",
        (patient_id, *params),
    )
    return [row[0] for row in rows]


def imaging_patients(db: Database, rule: LinkRule) -> dict[str, list[str]]:
    """Records patient id -> DICOM PatientIDs of indexed imaging patients it is linked to."""
    if not has_dicom_index(db):
        return {}
    condition, params = rule.sql()
    rows = db.query(
        "SELECT DISTINCT i.patient_id, d.patient_id AS dicom_id FROM records_identifiers i "
        f"JOIN dicom_patients d ON d.patient_id = i.value WHERE {condition} ORDER BY 1, 2",
        params,
    )
    links: dict[str, list[str]] = {}
    for row in rows:
        links.setdefault(row[0], []).append(row[1])
    return links


def linked_studies(db: Database, patient_id: str, rule: LinkRule) -> list[dict]:
    """Indexed studies of the patient: through a linked DICOM PatientID, or an ImagingStudy
    resource naming the study's UID. Each says how it was linked."""
    if not has_dicom_index(db):
        return []
    condition, params = rule.sql()
    rows = db.query(
        "SELECT s.study_uid, s.patient_id AS dicom_patient_id, s.study_date, s.description, "
        "'patient-id' AS linked_by FROM dicom_studies s WHERE s.patient_id IN "
        f"(SELECT i.value FROM records_identifiers i WHERE i.patient_id = ? AND {condition}) "
        "UNION "
        "SELECT s.study_uid, s.patient_id, s.study_date, s.description, 'imaging-study' "
        "FROM dicom_studies s JOIN records_studies r ON r.study_uid = s.study_uid "
        "WHERE r.patient_id = ? ORDER BY 3, 1",
        (patient_id, *params, patient_id),
    )
    merged: dict[str, dict] = {}
    for row in rows:
        entry = merged.setdefault(
            row["study_uid"],
            {
                "study_uid": row["study_uid"],
                "dicom_patient_id": row["dicom_patient_id"],
                "study_date": row["study_date"],
                "description": row["description"],
                "linked_by": [],
            },
        )
        entry["linked_by"].append(row["linked_by"])
    return list(merged.values())


def indexed_study_uids(db: Database, study_uids: list[str]) -> set[str]:
    """Which of these Study Instance UIDs are in the DICOM index."""
    if not study_uids or not has_dicom_index(db):
        return set()
    found: set[str] = set()
    for start in range(0, len(study_uids), 500):
        chunk = study_uids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        rows = db.query(
            f"SELECT study_uid FROM dicom_studies WHERE study_uid IN ({marks})", tuple(chunk)
        )
        found.update(row[0] for row in rows)
    return found
