"""A patient's history as arrays and intervals on one time axis, for plots, models and `show`.

Times are float seconds since 1970-01-01 UTC (`datetimes()` gives numpy datetime64). Each
observation code becomes one series in a single unit: the most frequent one, with the others
converted where UCUM defines the conversion. Values in a unit that cannot be converted are kept
apart in `other_units`, never mixed into the curve, and the series is flagged `mixed_units`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby

import numpy as np

from workstation.records.dates import parse_fhir_datetime
from workstation.records.units import convert
from workstation.store.database import Database

SPAN_KINDS = ("condition", "medication", "allergy")
EVENT_KINDS = ("encounter", "procedure", "report")


@dataclass(frozen=True)
class ObservationSeries:
    code: str
    system: str
    display: str
    unit: str  # the unit of `values`
    times: np.ndarray  # float64 seconds, ascending
    values: np.ndarray  # float64; NaN where the value is coded or text
    texts: np.ndarray  # object: the coded/text value, or None for numbers
    units_seen: tuple[str, ...] = ()
    mixed_units: bool = False
    other_units: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    panel_code: str = ""  # the panel (e.g. blood pressure 85354-9) a component came from

    def datetimes(self) -> np.ndarray:
        return (self.times * 1000).astype("datetime64[ms]")

    @property
    def numeric(self) -> bool:
        return bool(np.isfinite(self.values).any())


@dataclass(frozen=True)
class Span:
    """A condition, medication or allergy: from start to end (None = still ongoing)."""

    kind: str
    code: str
    system: str
    display: str
    status: str
    start: float | None
    end: float | None
    start_text: str | None
    end_text: str | None


@dataclass(frozen=True)
class Event:
    """An encounter, procedure or diagnostic report at a time (with an end where it has one)."""

    kind: str
    code: str
    system: str
    display: str
    status: str
    time: float | None
    end: float | None
    time_text: str | None


@dataclass(frozen=True)
class StudyMarker:
    study_uid: str
    time: float | None
    time_text: str | None
    modalities: str
    description: str
    indexed: bool = False  # the study is in the DICOM index and can be opened


@dataclass
class Timeline:
    patient_id: str
    observations: dict[str, ObservationSeries]
    spans: list[Span]
    events: list[Event]
    studies: list[StudyMarker]
    demographics: dict = field(default_factory=dict)  # birth_date, sex, identifiers, synthetic

    def codes(self) -> list[str]:
        return list(self.observations)


def since_seconds(since: str | float | None) -> float | None:
    if since is None or isinstance(since, int | float):
        return since
    return parse_fhir_datetime(since)


def _code_filter(codes: list[str] | None) -> tuple[str, list[str]]:
    """SQL restricting observation rows to `codes` ("CODE" or "SYSTEM|CODE")."""
    if not codes:
        return "", []
    clauses, params = [], []
    for code in codes:
        system, sep, value = code.rpartition("|")
        if sep and system:
            clauses.append("code IN (SELECT code FROM records_codes WHERE code = ? AND system = ?)")
            params += [value, system]
        else:
            clauses.append("code = ?")
            params.append(value)
    return " AND (" + " OR ".join(clauses) + ")", params


def query_observations(
    db: Database, patient_id: str, codes: list[str] | None, since: float | None
) -> dict[str, ObservationSeries]:
    code_sql, params = _code_filter(codes)
    since_sql = " AND t >= ?" if since is not None else ""
    with db._lock:  # plain tuples from the covering index: the hot path of `show` and plots
        cursor = db.conn.cursor()
        cursor.row_factory = None
        rows = cursor.execute(
            "SELECT code, t, value, unit, value_text FROM records_observations "
            f"WHERE patient_id = ?{code_sql}{since_sql} ORDER BY code, t",
            (patient_id, *params, *([since] if since is not None else [])),
        ).fetchall()
    if not rows:
        return {}
    names = {
        row[0]: (row[1], row[2], row[3])
        for row in db.query("SELECT code, system, display, panel_code FROM records_codes")
    }
    series: dict[str, ObservationSeries] = {}
    for code, group in groupby(rows, key=lambda row: row[0]):
        series[code] = _series(code, list(group), *names.get(code, ("", "", "")))
    return series


def _series(code: str, rows: list, system: str, display: str, panel_code: str) -> ObservationSeries:
    count = len(rows)
    times = np.fromiter((r[1] for r in rows), dtype=np.float64, count=count)
    values = np.array([r[2] for r in rows], dtype=np.float64)  # None -> NaN
    units = np.array([r[3] for r in rows], dtype=object)
    texts = np.array([r[4] for r in rows], dtype=object)
    numeric = ~np.isnan(values)
    unit_names, unit_counts = np.unique(
        units[numeric & (units != "")].astype(str), return_counts=True
    )
    order = np.argsort(-unit_counts, kind="stable")
    units_seen = tuple(str(unit_names[i]) for i in order)
    target = units_seen[0] if units_seen else ""
    keep = np.ones(count, dtype=bool)
    other_units: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for unit in units_seen[1:]:
        mask = units == unit
        converted = convert(values[mask], unit, target, code)
        if converted is None:
            keep &= ~mask
            other_units[unit] = (times[mask], values[mask])
        else:
            values[mask] = converted
    return ObservationSeries(
        code=code,
        system=system,
        display=display,
        unit=target,
        times=times[keep],
        values=values[keep],
        texts=texts[keep],
        units_seen=units_seen,
        mixed_units=len(units_seen) > 1,
        other_units=other_units,
        panel_code=panel_code,
    )


def query_intervals(
    db: Database, patient_id: str, since: float | None
) -> tuple[list[Span], list[Event]]:
    """Spans still running at `since` (or ending after it) and events from `since` on."""
    since_sql = ""
    if since is not None:
        since_sql = " AND (coalesce(end_t, start_t) >= ? OR (end_t IS NULL AND kind IN (?, ?, ?)))"
    rows = db.query(
        "SELECT kind, code, system, display, status, start, start_t, end, end_t "
        f"FROM records_events WHERE patient_id = ?{since_sql} ORDER BY start_t, kind, code",
        (patient_id, *([since, *SPAN_KINDS] if since is not None else [])),
    )
    spans, events = [], []
    for r in rows:
        if r["kind"] in SPAN_KINDS:
            spans.append(
                Span(
                    r["kind"],
                    r["code"],
                    r["system"],
                    r["display"],
                    r["status"],
                    r["start_t"],
                    r["end_t"],
                    r["start"],
                    r["end"],
                )
            )
        else:
            events.append(
                Event(
                    r["kind"],
                    r["code"],
                    r["system"],
                    r["display"],
                    r["status"],
                    r["start_t"],
                    r["end_t"],
                    r["start"],
                )
            )
    return spans, events


def query_studies(
    db: Database, patient_id: str, since: float | None, indexed: set[str] | None = None
) -> list[StudyMarker]:
    since_sql = " AND started_t >= ?" if since is not None else ""
    rows = db.query(
        "SELECT study_uid, started, started_t, modalities, description FROM records_studies "
        f"WHERE patient_id = ?{since_sql} ORDER BY started_t",
        (patient_id, *([since] if since is not None else [])),
    )
    return [
        StudyMarker(
            r["study_uid"],
            r["started_t"],
            r["started"],
            r["modalities"],
            r["description"],
            r["study_uid"] in (indexed or set()),
        )
        for r in rows
    ]
