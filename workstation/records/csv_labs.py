"""Lab tables as CSV (patient, time, code, value, unit), with a mapping for other column names.

Each row becomes one Observation. Its identity is (patient, code system, code, time), so importing
the same table again adds nothing and a corrected value replaces the old one.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path

from workstation.records.dates import DateProblem, parse_fhir_datetime
from workstation.records.fhir_parse import ParsedResource
from workstation.records.sources import FileProblem

LOINC = "http://loinc.org"


@dataclass(frozen=True)
class CsvMapping:
    """Which CSV column holds each field. `display` is optional; `system` names the code system."""

    patient: str = "patient"
    time: str = "time"
    code: str = "code"
    value: str = "value"
    unit: str = "unit"
    display: str | None = None
    system: str = LOINC

    @classmethod
    def from_pairs(cls, pairs: list[str]) -> CsvMapping:
        """From "field=COLUMN" strings (e.g. "patient=MRN"); "system=URL" sets the code system."""
        known = {f.name for f in fields(cls)}
        mapping = cls()
        for pair in pairs:
            name, sep, column = pair.partition("=")
            if not sep or name.strip() not in known or not column.strip():
                raise ValueError(
                    f"column mapping {pair!r} is not FIELD=COLUMN with FIELD one of "
                    f"{', '.join(sorted(known))}"
                )
            mapping = replace(mapping, **{name.strip(): column.strip()})
        return mapping


def read_lab_rows(path: Path, mapping: CsvMapping) -> Iterator[tuple[str, ParsedResource | str]]:
    """(location, parsed observation or the reason the row is broken) per data row.

    The parsed observation's patient_id still holds the CSV's patient value (an id or MRN); the
    importer resolves it against the store. Raises FileProblem for a missing column.
    """
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
    except UnicodeDecodeError:
        raise FileProblem("not a CSV text file (not UTF-8)") from None
    with handle:
        wanted = [mapping.patient, mapping.time, mapping.code, mapping.value, mapping.unit]
        if mapping.display:
            wanted.append(mapping.display)
        missing = [column for column in wanted if column not in header]
        if missing:
            raise FileProblem(
                f"CSV has no column {', '.join(map(repr, missing))} (columns: "
                f"{', '.join(header) or 'none'}); map columns with --column FIELD=COLUMN"
            )
        try:
            for number, row in enumerate(reader, start=2):
                yield f"row {number}", _row(row, mapping)
        except UnicodeDecodeError:
            raise FileProblem("not a CSV text file (not UTF-8)") from None
        except csv.Error as error:
            raise FileProblem(f"CSV is malformed at line {reader.line_num}: {error}") from None


def _row(row: dict[str, str | None], mapping: CsvMapping) -> ParsedResource | str:
    def cell(column: str | None) -> str:
        return (row.get(column) or "").strip() if column else ""

    patient, time, code = cell(mapping.patient), cell(mapping.time), cell(mapping.code)
    value, unit = cell(mapping.value), cell(mapping.unit)
    for name, text in (("patient", patient), ("time", time), ("code", code), ("value", value)):
        if not text:
            return f"empty {name} (column {getattr(mapping, name)!r})"
    try:
        t = parse_fhir_datetime(time)
    except DateProblem as error:
        return str(error)
    try:
        number: float | None = float(value)
    except ValueError:
        number = None
    if number is not None and not unit:
        return f"value {value} has no unit (column {mapping.unit!r} is empty)"
    identity = f"Observation|csv|{patient}|{mapping.system}|{code}|{time}"
    digest = hashlib.blake2b(identity.encode(), digest_size=12).hexdigest()
    content = hashlib.blake2b(
        "\x1f".join((value, unit, cell(mapping.display))).encode(), digest_size=16
    ).hexdigest()
    parsed = ParsedResource("Observation", f"csv-{digest}", identity, content, patient_id=patient)
    kind = "quantity" if number is not None else "string"
    parsed.observations.append(
        (
            code,
            mapping.system,
            cell(mapping.display),
            "",
            time,
            t,
            kind,
            number,
            unit,
            None if number is not None else value,
        )
    )
    return parsed
