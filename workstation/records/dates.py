"""FHIR date, dateTime and instant strings as sortable UTC seconds.

FHIR allows partial dates ("2020", "2020-05"); they sort at the start of the period they name. A
time without a zone is read as UTC (FHIR requires a zone whenever a time is given).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_FHIR_DATETIME = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:[T ](?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?P<fraction>\.\d+)?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


class DateProblem(ValueError):
    """A date string that is not a FHIR date/dateTime/instant."""


def parse_fhir_datetime(text: str) -> float:
    """Seconds since 1970-01-01T00:00Z for a FHIR date/dateTime/instant string."""
    match = _FHIR_DATETIME.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise DateProblem(
            f"date {text!r} is not a FHIR date or dateTime (YYYY[-MM[-DD[Thh:mm:ss+zz:zz]]])"
        )
    parts = match.groupdict()
    try:
        stamp = datetime(
            int(parts["year"]),
            int(parts["month"] or 1),
            int(parts["day"] or 1),
            int(parts["hour"] or 0),
            int(parts["minute"] or 0),
            int(parts["second"] or 0),
            tzinfo=UTC,
        )
    except ValueError as error:
        raise DateProblem(f"date {text!r} does not exist ({error})") from None
    seconds = stamp.timestamp() + (float(parts["fraction"]) if parts["fraction"] else 0.0)
    zone = parts["zone"]
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds


def iso_utc(seconds: float) -> str:
    """A UTC ISO-8601 string for seconds since the epoch (for command output)."""
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")
