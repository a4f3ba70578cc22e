"""The "records" store area: FHIR-derived tables, as append-only migrations.

Every stored resource has one row in `records_resources` (identity, content hash, where it came
from); what the timeline and `records show` read lives in narrow tables keyed by the patient's
FHIR id and indexed for per-patient, per-code, time-ordered reads (the observation index covers
the columns a timeline reads, so a patient's 10k values come from one contiguous index range;
`records_codes` holds each code's system and display once). Derived rows hang off the
resource row with ON DELETE CASCADE, so updating a changed resource is delete + insert inside the
file's transaction. Tables are prefixed `records_` because other areas share the database file.
"""

from __future__ import annotations

from workstation.store.database import register_migrations

AREA = "records"

SCHEMA_V1 = """
CREATE TABLE records_resources (
    resource_key INTEGER PRIMARY KEY,
    resource_type TEXT NOT NULL,
    fhir_id TEXT NOT NULL,
    identity TEXT NOT NULL UNIQUE,
    patient_id TEXT,
    encounter_id TEXT,
    content_hash TEXT NOT NULL,
    source TEXT NOT NULL,
    location TEXT NOT NULL,
    imported_at TEXT NOT NULL
);
CREATE INDEX records_resources_type_id ON records_resources(resource_type, fhir_id);
CREATE INDEX records_resources_patient ON records_resources(patient_id);
CREATE TABLE records_patients (
    patient_id TEXT PRIMARY KEY,
    resource_key INTEGER NOT NULL REFERENCES records_resources(resource_key) ON DELETE CASCADE,
    family TEXT NOT NULL DEFAULT '',
    given TEXT NOT NULL DEFAULT '',
    birth_date TEXT NOT NULL DEFAULT '',
    sex TEXT NOT NULL DEFAULT '',
    deceased TEXT NOT NULL DEFAULT '',
    race TEXT NOT NULL DEFAULT '',
    ethnicity TEXT NOT NULL DEFAULT '',
    synthetic INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX records_patients_key ON records_patients(resource_key);
CREATE TABLE records_identifiers (
    resource_key INTEGER NOT NULL REFERENCES records_resources(resource_key) ON DELETE CASCADE,
    patient_id TEXT NOT NULL,
    system TEXT NOT NULL DEFAULT '',
    type_code TEXT NOT NULL DEFAULT '',
    value TEXT NOT NULL
);
CREATE INDEX records_identifiers_value ON records_identifiers(value);
CREATE INDEX records_identifiers_patient ON records_identifiers(patient_id);
CREATE INDEX records_identifiers_key ON records_identifiers(resource_key);
CREATE TABLE records_observations (
    resource_key INTEGER NOT NULL REFERENCES records_resources(resource_key) ON DELETE CASCADE,
    patient_id TEXT NOT NULL,
    code TEXT NOT NULL,
    system TEXT NOT NULL DEFAULT '',
    display TEXT NOT NULL DEFAULT '',
    panel_code TEXT NOT NULL DEFAULT '',
    time TEXT NOT NULL,
    t REAL NOT NULL,
    kind TEXT NOT NULL,
    value REAL,
    unit TEXT NOT NULL DEFAULT '',
    value_text TEXT
);
CREATE INDEX records_observations_patient_code
    ON records_observations(patient_id, code, t, value, unit, value_text);
CREATE TABLE records_codes (
    code TEXT PRIMARY KEY,
    system TEXT NOT NULL DEFAULT '',
    display TEXT NOT NULL DEFAULT '',
    panel_code TEXT NOT NULL DEFAULT ''
);
CREATE INDEX records_observations_key ON records_observations(resource_key);
CREATE TABLE records_events (
    resource_key INTEGER NOT NULL REFERENCES records_resources(resource_key) ON DELETE CASCADE,
    patient_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    code TEXT NOT NULL DEFAULT '',
    system TEXT NOT NULL DEFAULT '',
    display TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT '',
    start TEXT,
    start_t REAL,
    end TEXT,
    end_t REAL
);
CREATE INDEX records_events_patient ON records_events(patient_id, kind, start_t);
CREATE INDEX records_events_key ON records_events(resource_key);
CREATE TABLE records_studies (
    resource_key INTEGER NOT NULL REFERENCES records_resources(resource_key) ON DELETE CASCADE,
    patient_id TEXT NOT NULL,
    study_uid TEXT NOT NULL DEFAULT '',
    started TEXT,
    started_t REAL,
    modalities TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    series_count INTEGER,
    instance_count INTEGER
);
CREATE INDEX records_studies_patient ON records_studies(patient_id);
CREATE INDEX records_studies_uid ON records_studies(study_uid);
CREATE INDEX records_studies_key ON records_studies(resource_key);
CREATE TABLE records_problems (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    location TEXT NOT NULL,
    resource TEXT NOT NULL DEFAULT '',
    severity TEXT NOT NULL,
    reason TEXT NOT NULL,
    detected_at TEXT NOT NULL
);
CREATE INDEX records_problems_source ON records_problems(source)
"""

register_migrations(AREA, [SCHEMA_V1])
