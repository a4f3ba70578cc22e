"""Checks on C-FIND matching keys before anything goes on the network.

A malformed date would otherwise reach the PACS (pydicom only warns) and come back as
"0 matches", which reads as "no such study". Each check raises ValueError with the value and
the accepted forms; the caller adds which field or option it came from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date

DATE_FORMS = "YYYYMMDD, YYYYMMDD-YYYYMMDD, -YYYYMMDD or YYYYMMDD-"
_DATE_RANGE = re.compile(r"^(?P<start>\d{8})?(?P<dash>-)?(?P<end>\d{8})?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MODALITY = re.compile(r"^[A-Z0-9_ ]{1,16}$")


def date_range(text: str) -> str:
    """A DICOM DA range (single date, A-B, -B, A-), checked for real calendar dates."""
    value = text.strip()
    match = _DATE_RANGE.match(value)
    if not value or not match or (match["start"] is None and match["end"] is None):
        raise ValueError(f"{text!r} is not {DATE_FORMS}")
    if match["dash"] is None and match["end"] is not None:  # "2024031520240316"
        raise ValueError(f"{text!r} is not {DATE_FORMS}")
    days = [_day(match[part], text) for part in ("start", "end") if match[part]]
    if len(days) == 2 and days[0] > days[1]:
        raise ValueError(f"{text!r}: the range ends before it starts")
    return value


def patient_name(text: str) -> str:
    """A person-name pattern: wildcards * and ? are fine, a backslash or control character
    is not (a backslash would make it a list of names)."""
    value = text.strip()
    if "\\" in value or _CONTROL.search(value):
        raise ValueError(f"{text!r} contains a backslash or a control character")
    if len(value) > 64 * 5:
        raise ValueError(f"{text!r} is too long for a person name")
    return value


def identifier(text: str, longest: int = 64) -> str:
    """A patient ID or accession number: no backslash, no control character, LO length."""
    value = text.strip()
    if "\\" in value or _CONTROL.search(value):
        raise ValueError(f"{text!r} contains a backslash or a control character")
    if len(value) > longest:
        raise ValueError(f"{text!r} is longer than {longest} characters")
    return value


def modality(text: str) -> str:
    """A modality code such as CT or MR (upper-cased)."""
    value = text.strip().upper()
    if not _MODALITY.match(value):
        raise ValueError(f"{text!r} is not a modality code such as CT, MR or US")
    return value


def _day(digits: str, text: str) -> date:
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        raise ValueError(f"{text!r}: {digits} is not a calendar date") from None


class SearchKeyError(ValueError):
    """A matching key that must not be sent. `key` is its name as `checked_search_keys` takes
    it, `words` how to say it to a person; the message is the check's."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.words = SEARCH_KEYS[key][0]


SEARCH_KEYS: dict[str, tuple[str, Callable[[str], str]]] = {
    "patient_id": ("patient ID", identifier),
    "patient_name": ("patient name", patient_name),
    "study_date": ("study date", date_range),
    "modality": ("modality", modality),
}
"""The matching keys a search takes from a person, with their words and checks."""


def checked_search_keys(keys: Mapping[str, str | None]) -> dict[str, str | None]:
    """Each key of `SEARCH_KEYS` checked and normalised (None or "" is no filter, None);
    SearchKeyError names the first that fails."""
    checked: dict[str, str | None] = {}
    for key, value in keys.items():
        check = SEARCH_KEYS[key][1]
        try:
            checked[key] = check(value) if value else None
        except ValueError as error:
            raise SearchKeyError(key, str(error)) from None
    return checked
