"""The "dicom" store area: tables for the index, as append-only migrations.

Every FrameRecord field has a column in `dicom_frames`, so a series loads without re-reading any
header. `dicom_files` remembers every file ever looked at (good or bad) by path, size and mtime, so
re-indexing skips what has not changed. Tables are prefixed `dicom_` because other areas share the
database file.
"""

from __future__ import annotations

import json
import sqlite3

from workstation.dicom.records import FrameRecord
from workstation.store.database import register_migrations

AREA = "dicom"

SCHEMA_V1 = """
CREATE TABLE dicom_patients (
    patient_id TEXT PRIMARY KEY,
    patient_name TEXT NOT NULL DEFAULT '',
    birth_date TEXT NOT NULL DEFAULT '',
    sex TEXT NOT NULL DEFAULT ''
);
CREATE TABLE dicom_studies (
    study_uid TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES dicom_patients(patient_id),
    study_date TEXT NOT NULL DEFAULT '',
    study_time TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    accession_number TEXT NOT NULL DEFAULT ''
);
CREATE INDEX dicom_studies_patient ON dicom_studies(patient_id);
CREATE TABLE dicom_series (
    series_uid TEXT PRIMARY KEY,
    study_uid TEXT NOT NULL REFERENCES dicom_studies(study_uid),
    series_number INTEGER,
    modality TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    synthetic INTEGER NOT NULL DEFAULT 0,
    instance_count INTEGER NOT NULL DEFAULT 0,
    frame_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX dicom_series_study ON dicom_series(study_uid);
CREATE TABLE dicom_stacks (
    series_uid TEXT NOT NULL REFERENCES dicom_series(series_uid) ON DELETE CASCADE,
    stack INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    columns INTEGER NOT NULL,
    slices INTEGER NOT NULL,
    instances INTEGER NOT NULL,
    stack_key TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (series_uid, stack)
);
CREATE TABLE dicom_instances (
    sop_instance_uid TEXT PRIMARY KEY,
    series_uid TEXT NOT NULL REFERENCES dicom_series(series_uid),
    path TEXT NOT NULL UNIQUE,
    source_path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sop_class_uid TEXT NOT NULL,
    transfer_syntax_uid TEXT NOT NULL,
    image_type TEXT NOT NULL DEFAULT '',
    number_of_frames INTEGER NOT NULL,
    indexed_at TEXT NOT NULL
);
CREATE INDEX dicom_instances_series ON dicom_instances(series_uid);
CREATE INDEX dicom_instances_source ON dicom_instances(source_path);
CREATE TABLE dicom_frames (
    sop_instance_uid TEXT NOT NULL REFERENCES dicom_instances(sop_instance_uid) ON DELETE CASCADE,
    frame_index INTEGER NOT NULL,
    path TEXT NOT NULL,
    sop_class_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL,
    study_uid TEXT NOT NULL,
    rows INTEGER NOT NULL,
    columns INTEGER NOT NULL,
    bits_allocated INTEGER NOT NULL,
    bits_stored INTEGER NOT NULL,
    pixel_representation INTEGER NOT NULL,
    samples_per_pixel INTEGER NOT NULL,
    photometric TEXT NOT NULL,
    planar_configuration INTEGER NOT NULL,
    transfer_syntax_uid TEXT NOT NULL,
    number_of_frames INTEGER NOT NULL,
    pixel_data_offset INTEGER,
    position TEXT,
    orientation TEXT,
    pixel_spacing TEXT,
    slice_thickness REAL,
    rescale_slope REAL NOT NULL,
    rescale_intercept REAL NOT NULL,
    pixel_padding_value INTEGER,
    window_center REAL,
    window_width REAL,
    instance_number INTEGER,
    modality TEXT NOT NULL DEFAULT '',
    stack_key TEXT NOT NULL DEFAULT '',
    units TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (sop_instance_uid, frame_index)
);
CREATE INDEX dicom_frames_series ON dicom_frames(series_uid);
CREATE TABLE dicom_files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    status TEXT NOT NULL,
    sop_instance_uid TEXT,
    copied INTEGER NOT NULL DEFAULT 0,
    indexed_at TEXT NOT NULL
);
CREATE INDEX dicom_files_sop ON dicom_files(sop_instance_uid);
CREATE TABLE dicom_problems (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    series_uid TEXT,
    detected_at TEXT NOT NULL
);
CREATE INDEX dicom_problems_path ON dicom_problems(path);
CREATE INDEX dicom_problems_series ON dicom_problems(series_uid)
"""

# Columns of dicom_frames that hold tuples, stored as JSON arrays.
TUPLE_FRAME_FIELDS = ("position", "orientation", "pixel_spacing")

register_migrations(AREA, [SCHEMA_V1])


FRAME_COLUMNS = (
    "sop_instance_uid",
    "frame_index",
    "path",
    "sop_class_uid",
    "series_uid",
    "study_uid",
    "rows",
    "columns",
    "bits_allocated",
    "bits_stored",
    "pixel_representation",
    "samples_per_pixel",
    "photometric",
    "planar_configuration",
    "transfer_syntax_uid",
    "number_of_frames",
    "pixel_data_offset",
    "position",
    "orientation",
    "pixel_spacing",
    "slice_thickness",
    "rescale_slope",
    "rescale_intercept",
    "pixel_padding_value",
    "window_center",
    "window_width",
    "instance_number",
    "modality",
    "stack_key",
    "units",
)
INSERT_FRAME_SQL = (
    f"INSERT INTO dicom_frames ({', '.join(FRAME_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in FRAME_COLUMNS)})"
)


def frame_to_row(frame: FrameRecord) -> tuple:
    """A FrameRecord as the values of one dicom_frames row, in FRAME_COLUMNS order."""
    values = []
    for name in FRAME_COLUMNS:
        value = getattr(frame, name)
        if name in TUPLE_FRAME_FIELDS and value is not None:
            value = json.dumps([float(v) for v in value])
        values.append(value)
    return tuple(values)


def frame_from_row(row: sqlite3.Row) -> FrameRecord:
    """The FrameRecord a dicom_frames row was made from, exactly."""
    values = {}
    for name in FRAME_COLUMNS:
        value = row[name]
        if name in TUPLE_FRAME_FIELDS and value is not None:
            value = tuple(json.loads(value))
        values[name] = value
    return FrameRecord(**values)
