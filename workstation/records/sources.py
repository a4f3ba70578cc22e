"""Reading FHIR files: bundles and single resources (JSON), bulk NDJSON streamed line by line.

NDJSON is never held in memory: lines are read one at a time with a length cap, so a 2 GB export
costs the memory of its longest line. A bundle is one JSON document and is read whole; the entries'
full URLs are collected first so `urn:uuid:` references resolve in any entry order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FHIR_SUFFIXES = (".json", ".ndjson", ".jsonl")
CSV_SUFFIXES = (".csv",)
MAX_LINE_BYTES = 64 * 1024 * 1024
BUNDLE_TYPES = {"transaction", "batch", "collection", "searchset", "document", "message", "history"}


class FileProblem(ValueError):
    """The whole file cannot be read as FHIR; nothing from it is imported."""


@dataclass
class Entry:
    """One resource's raw JSON, or why there is none, and where it sits in its file."""

    location: str
    raw: dict[str, Any] | None = None
    error: str | None = None
    full_url: str | None = None


@dataclass
class FhirDocument:
    kind: str  # "bundle", "resource" or "ndjson"
    entries: Iterator[Entry]
    url_map: dict[str, tuple[str, str]]


def expand_paths(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(files to import, files skipped) for files and folders (searched recursively)."""
    files: list[Path] = []
    skipped: list[Path] = []
    for path in paths:
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if child.name.startswith("."):
                    continue
                suffix = child.suffix.lower()
                (files if suffix in FHIR_SUFFIXES + CSV_SUFFIXES else skipped).append(child)
        else:
            files.append(path)
    return files, skipped


def _looks_like_ndjson(path: Path) -> bool:
    if path.suffix.lower() in (".ndjson", ".jsonl"):
        return True
    with path.open("rb") as handle:
        first = handle.readline(MAX_LINE_BYTES).strip()
        second = handle.readline(MAX_LINE_BYTES).strip()
    if not (first.startswith(b"{") and first.endswith(b"}") and second.startswith(b"{")):
        return False
    try:
        json.loads(first)
    except ValueError:
        return False
    return True


def open_fhir_file(path: Path) -> FhirDocument:
    """Open a FHIR JSON or NDJSON file. Raises FileProblem when it is not FHIR at all."""
    if _looks_like_ndjson(path):
        return FhirDocument("ndjson", _ndjson_entries(path), {})
    try:
        with path.open("rb") as handle:
            document = json.load(handle)
    except UnicodeDecodeError as error:
        raise FileProblem(
            f"not JSON: not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None
    except json.JSONDecodeError as error:
        raise FileProblem(
            f"not JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
        raise FileProblem("not FHIR: the JSON document has no resourceType")
    if document["resourceType"] != "Bundle":
        return FhirDocument("resource", iter([Entry("resource", raw=document)]), {})
    bundle_type = document.get("type")
    if bundle_type not in BUNDLE_TYPES:
        raise FileProblem(f"Bundle type {bundle_type!r} is not a FHIR bundle type")
    entries = document.get("entry") or []
    if not isinstance(entries, list):
        raise FileProblem("Bundle.entry is not a list")
    return FhirDocument("bundle", _bundle_entries(entries), _url_map(entries))


def _url_map(entries: list[Any]) -> dict[str, tuple[str, str]]:
    url_map: dict[str, tuple[str, str]] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        resource, full_url = entry.get("resource"), entry.get("fullUrl")
        if not (isinstance(resource, dict) and isinstance(full_url, str)):
            continue
        resource_type = resource.get("resourceType")
        fhir_id = resource.get("id") or full_url.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
        if isinstance(resource_type, str):
            url_map[full_url] = (resource_type, fhir_id)
    return url_map


def _bundle_entries(entries: list[Any]) -> Iterator[Entry]:
    for index, entry in enumerate(entries):
        location = f"entry {index}"
        if not isinstance(entry, dict):
            yield Entry(location, error="bundle entry is not a JSON object")
            continue
        resource = entry.get("resource")
        full_url = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
        if resource is None:
            method = (entry.get("request") or {}).get("method", "")
            yield Entry(location, error=f"bundle entry has no resource {method}".strip())
        elif not isinstance(resource, dict):
            yield Entry(location, error="bundle entry resource is not a JSON object")
        else:
            yield Entry(location, raw=resource, full_url=full_url)


def _ndjson_entries(path: Path) -> Iterator[Entry]:
    with path.open("rb") as handle:
        number = 0
        while True:
            line = handle.readline(MAX_LINE_BYTES)
            if not line:
                return
            number += 1
            location = f"line {number}"
            if len(line) >= MAX_LINE_BYTES and not line.endswith(b"\n"):
                while (rest := handle.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                    pass
                yield Entry(location, error=f"line longer than {MAX_LINE_BYTES // 2**20} MB")
                continue
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except UnicodeDecodeError:
                yield Entry(location, error="not JSON: not UTF-8 text")
                continue
            except json.JSONDecodeError as error:
                yield Entry(location, error=f"not JSON: {error.msg} at column {error.colno}")
                continue
            if not isinstance(raw, dict):
                yield Entry(location, error="not FHIR: the line is not a JSON object")
                continue
            yield Entry(location, raw=raw)
