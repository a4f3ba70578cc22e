"""`RecordsStore`: the records area of a store folder, as the GUI, plugins and commands use it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from workstation.records import schema
from workstation.records.csv_labs import CsvMapping
from workstation.records.importer import ImportSummary, Progress, import_paths
from workstation.records.linking import (
    LinkRule,
    imaging_patients,
    indexed_study_uids,
    linked_studies,
    linking_identifiers,
)
from workstation.records.timeline import (
    Timeline,
    query_intervals,
    query_observations,
    query_studies,
    since_seconds,
)
from workstation.store.database import open_database


class PatientNotFound(LookupError):
    """No records patient has this FHIR id or identifier (or more than one has the identifier)."""


class RecordsStore:
    """Read access to imported records plus import; one SQLite connection, close() when done."""

    def __init__(self, store_dir: str | Path, link_rule: LinkRule | None = None) -> None:
        self.store_dir = Path(store_dir)
        self.link_rule = link_rule or LinkRule()
        self.db = open_database(self.store_dir, schema.AREA)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> RecordsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def import_paths(
        self,
        paths: Iterable[str | Path],
        csv_mapping: CsvMapping | None = None,
        progress: Progress | None = None,
    ) -> ImportSummary:
        return import_paths(self.store_dir, paths, csv_mapping=csv_mapping, progress=progress)

    def find_patient(self, given: str) -> str:
        """The FHIR id of the patient known by `given`: its FHIR id, else an identifier that
        links to DICOM (the MRN by default), else any identifier that names one patient only."""
        if self.db.query("SELECT 1 FROM records_patients WHERE patient_id = ?", (given,)):
            return given
        condition, params = self.link_rule.sql()
        for sql, args in (
            (f"WHERE i.value = ? AND {condition}", (given, *params)),
            ("WHERE i.value = ?", (given,)),
        ):
            rows = self.db.query(
                f"SELECT DISTINCT i.patient_id FROM records_identifiers i {sql}", args
            )
            if len(rows) == 1:
                return rows[0][0]
            if len(rows) > 1:
                raise PatientNotFound(
                    f"identifier {given!r} belongs to {len(rows)} patients "
                    f"({', '.join(r[0] for r in rows[:5])}); use the FHIR id"
                )
        raise PatientNotFound(f"no records patient has id or identifier {given!r}")

    def patients(self) -> list[dict[str, Any]]:
        """Every patient with resource counts and linked DICOM PatientIDs (for `records ls`)."""
        counts: dict[str, dict[str, int]] = {}
        for row in self.db.query(
            "SELECT patient_id, resource_type, count(*) FROM records_resources "
            "WHERE patient_id IS NOT NULL AND resource_type != 'Patient' "
            "GROUP BY patient_id, resource_type"
        ):
            counts.setdefault(row[0], {})[row[1]] = row[2]
        links = imaging_patients(self.db, self.link_rule)
        condition, params = self.link_rule.sql()
        mrns: dict[str, list[str]] = {}
        for row in self.db.query(
            f"SELECT i.patient_id, i.value FROM records_identifiers i WHERE {condition}", params
        ):
            mrns.setdefault(row[0], []).append(row[1])
        result = []
        for row in self.db.query(
            "SELECT * FROM records_patients ORDER BY family, given, patient_id"
        ):
            patient_id = row["patient_id"]
            result.append(
                {
                    "patient_id": patient_id,
                    "identifiers": mrns.get(patient_id, []),
                    "name": " ".join(p for p in (row["given"], row["family"]) if p),
                    "birth_date": row["birth_date"],
                    "sex": row["sex"],
                    "synthetic": bool(row["synthetic"]),
                    "counts": counts.get(patient_id, {}),
                    "imaging_patient_ids": links.get(patient_id, []),
                }
            )
        return result

    def demographics(self, patient_id: str) -> dict[str, Any]:
        row = self.db.query("SELECT * FROM records_patients WHERE patient_id = ?", (patient_id,))
        if not row:
            raise PatientNotFound(f"no records patient has id {patient_id!r}")
        patient = dict(row[0])
        patient.pop("resource_key", None)
        patient["synthetic"] = bool(patient["synthetic"])
        patient["identifiers"] = [
            dict(r)
            for r in self.db.query(
                "SELECT system, type_code, value FROM records_identifiers WHERE patient_id = ?",
                (patient_id,),
            )
        ]
        return patient

    def timeline(
        self,
        patient_key: str,
        codes: list[str] | None = None,
        since: str | float | None = None,
    ) -> Timeline:
        """The patient's observations per code (arrays), spans, events and imaging markers.

        `patient_key` is the FHIR id or an identifier (see find_patient); `codes` limits the
        observations ("CODE" or "SYSTEM|CODE"); `since` is a FHIR date or seconds since 1970.
        """
        patient_id = self.find_patient(patient_key)
        start = since_seconds(since)
        spans, events = query_intervals(self.db, patient_id, start)
        studies = query_studies(self.db, patient_id, start)
        indexed = indexed_study_uids(self.db, [s.study_uid for s in studies if s.study_uid])
        if indexed:
            studies = query_studies(self.db, patient_id, start, indexed)
        return Timeline(
            patient_id,
            query_observations(self.db, patient_id, codes, start),
            spans,
            events,
            studies,
            self.demographics(patient_id),
        )

    def record(
        self,
        patient_key: str,
        codes: list[str] | None = None,
        since: str | float | None = None,
    ) -> dict[str, Any]:
        """Everything `records show --json` prints, as plain JSON-ready data."""
        timeline = self.timeline(patient_key, codes, since)
        patient_id = timeline.patient_id
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for span in timeline.spans:
            by_kind.setdefault(span.kind, []).append(
                {
                    "code": span.code,
                    "system": span.system,
                    "display": span.display,
                    "status": span.status,
                    "start": span.start_text,
                    "end": span.end_text,
                }
            )
        for event in timeline.events:
            by_kind.setdefault(event.kind, []).append(
                {
                    "code": event.code,
                    "system": event.system,
                    "display": event.display,
                    "status": event.status,
                    "time": event.time_text,
                }
            )
        observations = []
        for series in timeline.observations.values():
            observations.append(
                {
                    "code": series.code,
                    "system": series.system,
                    "display": series.display,
                    "unit": series.unit,
                    "units_seen": list(series.units_seen),
                    "mixed_units": series.mixed_units,
                    "panel_code": series.panel_code,
                    "count": int(series.times.size),
                    "values": [
                        {"time": f"{t}Z", "value": None if v != v else v, "text": x}
                        for t, v, x in zip(
                            np.datetime_as_string(series.datetimes(), unit="s").tolist(),
                            series.values.tolist(),
                            series.texts.tolist(),
                            strict=True,
                        )
                    ],
                    "unconverted": {
                        unit: {"count": int(times.size), "values": values.tolist()}
                        for unit, (times, values) in series.other_units.items()
                    },
                }
            )
        return {
            "patient": self.demographics(patient_id),
            "imaging_identifiers": linking_identifiers(self.db, patient_id, self.link_rule),
            "conditions": by_kind.get("condition", []),
            "medications": by_kind.get("medication", []),
            "allergies": by_kind.get("allergy", []),
            "procedures": by_kind.get("procedure", []),
            "encounters": by_kind.get("encounter", []),
            "reports": by_kind.get("report", []),
            "observations": observations,
            "imaging_studies": [
                {
                    "study_uid": s.study_uid,
                    "started": s.time_text,
                    "modalities": s.modalities,
                    "description": s.description,
                    "indexed": s.indexed,
                }
                for s in timeline.studies
            ],
            "linked_imaging": linked_studies(self.db, patient_id, self.link_rule),
        }

    def problems(self, source: str | None = None) -> list[dict[str, Any]]:
        """Problems from the latest import of each file (or of `source`)."""
        where, params = ("WHERE source = ?", (source,)) if source else ("", ())
        rows = self.db.query(
            "SELECT source, location, resource, severity, reason, detected_at "
            f"FROM records_problems {where} ORDER BY id",
            params,
        )
        return [dict(r) for r in rows]


def load_patient_records(store_dir: str | Path, patient_key: str) -> Timeline:
    """The patient's whole timeline (what an analysis gets from `RunContext.records()`).

    Raises PatientNotFound (a LookupError) naming the id when no records patient matches."""
    with RecordsStore(store_dir) as store:
        return store.timeline(patient_key)
