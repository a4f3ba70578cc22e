"""One FHIR R4 resource -> validated, flattened rows for the records tables.

Validation uses fhir.resources' R4B models (R4-compatible; the package's default R5 models reject
R4 Encounters, MedicationRequests, Procedures and ImagingStudies). Extraction then reads the plain
JSON, which validation has just vouched for, because walking the model objects is several times
slower and the shape is fixed by the specification.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from workstation.records.dates import DateProblem, parse_fhir_datetime
from workstation.records.problems import ResourceProblem
from workstation.records.units import UCUM_SYSTEM

# Resource types the records store keeps. Others (Claim, Organization, ...) are counted, not kept.
KEPT_TYPES = frozenset(
    {
        "Patient",
        "Encounter",
        "Condition",
        "Observation",
        "MedicationRequest",
        "MedicationStatement",
        "Procedure",
        "DiagnosticReport",
        "ImagingStudy",
        "AllergyIntolerance",
    }
)
V2_IDENTIFIER_TYPES = "http://terminology.hl7.org/CodeSystem/v2-0203"
SYNTHETIC_TAG = ("urn:workstation:tag", "synthetic")
STUDY_UID_PREFIX = "urn:oid:"

# (reference string) -> (resource type, FHIR id) or None when not followed; raises ResourceProblem.
Resolver = Callable[[str], tuple[str, str] | None]

ObservationRow = tuple[str, str, str, str, str, float, str, float | None, str, str | None]
EventRow = tuple[str, str, str, str, str, str | None, float | None, str | None, float | None]
StudyRow = tuple[str, str | None, float | None, str, str, int | None, int | None]


@dataclass
class ParsedResource:
    """A resource ready to store: identity, owner, and the rows each table gets."""

    resource_type: str
    fhir_id: str
    identity: str
    content_hash: str
    patient_id: str | None = None
    encounter_id: str | None = None
    patient: dict[str, Any] | None = None
    identifiers: list[tuple[str, str, str]] = field(default_factory=list)
    observations: list[ObservationRow] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)
    studies: list[StudyRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@cache
def model_class(resource_type: str) -> type:
    from fhir.resources.R4B import get_fhir_model_class

    return get_fhir_model_class(resource_type)


def is_fhir_type(resource_type: str) -> bool:
    try:
        model_class(resource_type)
    except (ValueError, TypeError):
        return False
    return True


def content_hash(raw: dict[str, Any]) -> str:
    text = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def describe_validation_error(error: Exception) -> str:
    """A pydantic ValidationError as one line: field path, message, offending value."""
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return str(error)
    parts = []
    for item in errors()[:3]:
        where = ".".join(str(p) for p in item.get("loc", ()) if p != "__root__")
        message = " ".join(str(item.get("msg", "")).split()).removeprefix("Value error, ")
        value = item.get("input")
        shown = "" if isinstance(value, dict | list) else f" (got {str(value)[:60]!r})"
        parts.append(f"{where or 'resource'}: {message}{shown}")
    more = len(errors()) - 3
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def validate(raw: dict[str, Any]) -> None:
    """Raise ResourceProblem unless `raw` is a valid R4 resource of its declared type."""
    resource_type = raw.get("resourceType")
    if not isinstance(resource_type, str):
        raise ResourceProblem("not a FHIR resource: no resourceType")
    if not is_fhir_type(resource_type):
        raise ResourceProblem(f"resourceType {resource_type!r} is not a FHIR R4 resource type")
    try:
        model_class(resource_type).model_validate(raw)
    except Exception as error:  # pydantic ValidationError and fhir_core's own errors
        raise ResourceProblem(
            f"invalid {resource_type}: {describe_validation_error(error)}"
        ) from None


def identity_of(raw: dict[str, Any], fallback_id: str | None = None) -> tuple[str, str]:
    """(FHIR id, identity key): "Type/id", else "Type|system|value" of the first identifier."""
    resource_type = raw["resourceType"]
    fhir_id = raw.get("id") or fallback_id
    if fhir_id:
        return fhir_id, f"{resource_type}/{fhir_id}"
    for identifier in raw.get("identifier") or []:
        if identifier.get("value"):
            key = f"{resource_type}|{identifier.get('system', '')}|{identifier['value']}"
            return key, key
    raise ResourceProblem(
        f"{resource_type} has no id and no identifier, so a re-import could not recognise it"
    )


def parse_resource(
    raw: dict[str, Any], resolve: Resolver, fallback_id: str | None = None
) -> ParsedResource:
    """Validate and flatten one kept resource. Raises ResourceProblem with the reason."""
    validate(raw)
    fhir_id, identity = identity_of(raw, fallback_id)
    parsed = ParsedResource(raw["resourceType"], fhir_id, identity, content_hash(raw))
    extractor = _EXTRACTORS[parsed.resource_type]
    try:
        extractor(raw, parsed, resolve)
    except DateProblem as error:
        raise ResourceProblem(str(error)) from None
    return parsed


# ---- helpers -------------------------------------------------------------------------------


def _coding(concept: dict[str, Any] | None) -> tuple[str, str, str]:
    """(code, system, display) of a CodeableConcept's first coding, text as fallback display."""
    if not concept:
        return ("", "", "")
    for coding in concept.get("coding") or []:
        if coding.get("code"):
            return (
                coding["code"],
                coding.get("system", ""),
                coding.get("display") or concept.get("text", ""),
            )
    text = concept.get("text", "")
    return (text, "", text)


def _when(text: str | None) -> tuple[str | None, float | None]:
    if not text:
        return (None, None)
    return (text, parse_fhir_datetime(text))


def _subject(raw: dict[str, Any], parsed: ParsedResource, resolve: Resolver, key: str) -> None:
    reference = (raw.get(key) or {}).get("reference")
    if not reference:
        raise ResourceProblem(f"{parsed.resource_type} has no {key} reference to a Patient")
    target = resolve(reference)
    if target is None or target[0] != "Patient":
        raise ResourceProblem(f"{key} {reference!r} does not point to a Patient")
    parsed.patient_id = target[1]


def _encounter(raw: dict[str, Any], parsed: ParsedResource, resolve: Resolver, key: str) -> None:
    reference = (raw.get(key) or {}).get("reference")
    if not reference:
        return
    try:
        target = resolve(reference)
    except ResourceProblem as problem:
        parsed.warnings.append(f"imported without its encounter: {problem}")
        return
    if target is not None and target[0] == "Encounter":
        parsed.encounter_id = target[1]


def _status(concept_or_code: Any) -> str:
    if isinstance(concept_or_code, dict):
        return _coding(concept_or_code)[0]
    return concept_or_code or ""


# ---- per resource type ---------------------------------------------------------------------


def _patient(raw: dict[str, Any], parsed: ParsedResource, resolve: Resolver) -> None:
    name = (raw.get("name") or [{}])[0]
    extensions = {ext.get("url", "").rsplit("/", 1)[-1]: ext for ext in raw.get("extension") or []}

    def ext_text(key: str) -> str:
        for sub in (extensions.get(key) or {}).get("extension") or []:
            if sub.get("url") == "text":
                return sub.get("valueString", "")
        return ""

    deceased = raw.get("deceasedDateTime") or ("yes" if raw.get("deceasedBoolean") else "")
    tags = {(t.get("system"), t.get("code")) for t in (raw.get("meta") or {}).get("tag") or []}
    if raw.get("birthDate"):
        parse_fhir_datetime(raw["birthDate"])
    parsed.patient_id = parsed.fhir_id
    parsed.patient = {
        "family": name.get("family", ""),
        "given": " ".join(name.get("given") or []),
        "birth_date": raw.get("birthDate", ""),
        "sex": raw.get("gender", ""),
        "deceased": deceased,
        "race": ext_text("us-core-race"),
        "ethnicity": ext_text("us-core-ethnicity"),
        "synthetic": int(SYNTHETIC_TAG in tags),
    }
    for identifier in raw.get("identifier") or []:
        if not identifier.get("value"):
            continue
        type_code = ""
        for coding in (identifier.get("type") or {}).get("coding") or []:
            type_code = coding.get("code", "") or type_code
        parsed.identifiers.append((identifier.get("system", ""), type_code, identifier["value"]))


def _quantity(quantity: dict[str, Any], what: str) -> tuple[float, str]:
    if quantity.get("value") is None:
        raise ResourceProblem(f"{what} has no value")
    unit = quantity.get("code") if quantity.get("system") == UCUM_SYSTEM else None
    unit = unit or quantity.get("unit") or quantity.get("code")
    if not unit:
        raise ResourceProblem(f"{what} {quantity['value']} has no unit (UCUM code or unit text)")
    return float(quantity["value"]), unit


def _value(holder: dict[str, Any], what: str) -> tuple[str, float | None, str, str | None] | None:
    """(kind, number, unit, text) of a value[x], or None when the element has no value."""
    if "valueQuantity" in holder:
        number, unit = _quantity(holder["valueQuantity"], f"{what} valueQuantity")
        return ("quantity", number, unit, None)
    if "valueCodeableConcept" in holder:
        code, _, display = _coding(holder["valueCodeableConcept"])
        return ("coded", None, "", display or code)
    if "valueString" in holder:
        return ("string", None, "", holder["valueString"])
    if "valueBoolean" in holder:
        return ("boolean", float(holder["valueBoolean"]), "", str(holder["valueBoolean"]).lower())
    if "valueInteger" in holder:
        return ("integer", float(holder["valueInteger"]), "1", None)
    for key in ("valueDateTime", "valueTime", "valuePeriod", "valueRange", "valueRatio"):
        if key in holder:
            return ("other", None, "", json.dumps(holder[key], separators=(",", ":")))
    return None


def _observation(raw: dict[str, Any], parsed: ParsedResource, resolve: Resolver) -> None:
    _subject(raw, parsed, resolve, "subject")
    _encounter(raw, parsed, resolve, "encounter")
    when = (
        raw.get("effectiveDateTime")
        or raw.get("effectiveInstant")
        or (raw.get("effectivePeriod") or {}).get("start")
        or raw.get("issued")
    )
    if not when:
        raise ResourceProblem("Observation has no effective time (effective[x] or issued)")
    time, t = _when(when)
    code, system, display = _coding(raw.get("code"))
    value = _value(raw, "Observation")
    if value is not None:
        parsed.observations.append((code, system, display, "", time, t, *value))
    for index, component in enumerate(raw.get("component") or []):
        component_value = _value(component, f"component {index}")
        if component_value is None:
            continue
        c_code, c_system, c_display = _coding(component.get("code"))
        parsed.observations.append((c_code, c_system, c_display, code, time, t, *component_value))


def _event(
    parsed: ParsedResource,
    kind: str,
    concept: dict[str, Any] | None,
    status: str,
    start: str | None,
    end: str | None,
) -> None:
    code, system, display = _coding(concept)
    parsed.events.append((kind, code, system, display, status, *_when(start), *_when(end)))


def _period(raw: dict[str, Any], key: str) -> tuple[str | None, str | None]:
    period = raw.get(f"{key}Period") or {}
    return (raw.get(f"{key}DateTime") or period.get("start"), period.get("end"))


def _encounter_resource(raw: dict[str, Any], parsed: ParsedResource, resolve: Resolver) -> None:
    _subject(raw, parsed, resolve, "subject")
    concept = (raw.get("type") or [None])[0] or {"text": (raw.get("class") or {}).get("code", "")}
    period = raw.get("period") or {}
    _event(
        parsed, "encounter", concept, raw.get("status", ""), period.get("start"), period.get("end")
    )


def _condition(raw: dict[str, Any], parsed: ParsedResource, resolve: Resolver) -> None:
    _subject(raw, parsed, resolve, "subject")
    _encounter(raw, parsed, resolve, "encounter")
    start = _period(raw, "onset")[0] or raw.get("recordedDate")
    end = raw.get("abatementDateTime") or (raw.get("abatementPeriod") or {}).get("end")
    _event(parsed, "condition", raw.get("code"), _status(raw.get("clinicalStatus")), start, end)


def _medication_concept(raw: dict[str, Any]) -> dict[str, Any] | None:
    if raw.get("medicationCodeableConcept"):
        return raw["medicationCodeableConcept"]
    reference = raw.get("medicationReference") or {}
    return {"text": reference.get("display") or reference.get("reference", "")}


def _medication_request(raw: dict[str, Any], parsed: ParsedResource, resolve: Resolver) -> None:
    _subject(raw, parsed, resolve, "subject")
    _encounter(raw, parsed, resolve, "encounter")
    end = ((raw.get("dispenseRequest") or {}).get("validityPeriod") or {}).get("end")
    for dosage in raw.get("dosageInstruction") or []:
        bounds = ((dosage.get("timing") or {}).get("repeat") or {}).get("boundsPeriod") or {}
        end = end or bounds.get("end")
    start = raw.get("authoredOn")
    if not start:
        raise ResourceProblem("MedicationRequest has no authoredOn date")
    _event(parsed, "medication", _medication_concept(raw), raw.get("status", ""), start, end)


def _medication_statement(raw: dict[str, Any], parsed: ParsedResource, resolve: Resolver) -> None:
    _subject(raw, parsed, resolve, "subject")
    _encounter(raw, parsed, resolve, "context")
    start, end = _period(raw, "effective")
    start = start or raw.get("dateAsserted")
    if not start:
        raise ResourceProblem("MedicationStatement has no effective[x] or dateAsserted date")
    _event(parsed, "medication", _medication_concept(raw), raw.get("status", ""), start, end)


def _procedure(raw: dict[str, Any], parsed: ParsedResource, resolve: Resolver) -> None:
    _subject(raw, parsed, resolve, "subject")
    _encounter(raw, parsed, resolve, "encounter")
    start, end = _period(raw, "performed")
    if not start:
        raise ResourceProblem("Procedure has no performed[x] date")
    _event(parsed, "procedure", raw.get("code"), raw.get("status", ""), start, end)


def _diagnostic_report(raw: dict[str, Any], parsed: ParsedResource, resolve: Resolver) -> None:
    _subject(raw, parsed, resolve, "subject")
    _encounter(raw, parsed, resolve, "encounter")
    start, end = _period(raw, "effective")
    start = start or raw.get("issued")
    if not start:
        raise ResourceProblem("DiagnosticReport has no effective[x] or issued date")
    _event(parsed, "report", raw.get("code"), raw.get("status", ""), start, end)


def _allergy(raw: dict[str, Any], parsed: ParsedResource, resolve: Resolver) -> None:
    _subject(raw, parsed, resolve, "patient")
    _encounter(raw, parsed, resolve, "encounter")
    start = _period(raw, "onset")[0] or raw.get("recordedDate")
    _event(parsed, "allergy", raw.get("code"), _status(raw.get("clinicalStatus")), start, None)


def _imaging_study(raw: dict[str, Any], parsed: ParsedResource, resolve: Resolver) -> None:
    _subject(raw, parsed, resolve, "subject")
    _encounter(raw, parsed, resolve, "encounter")
    study_uid = ""
    for identifier in raw.get("identifier") or []:
        value = identifier.get("value") or ""
        if value.startswith(STUDY_UID_PREFIX):
            study_uid = value[len(STUDY_UID_PREFIX) :]
            break
    if not study_uid:
        parsed.warnings.append(
            "ImagingStudy has no urn:oid: identifier, so it cannot be linked to an indexed study"
        )
    modalities = [m.get("code", "") for m in raw.get("modality") or []]
    for series in raw.get("series") or []:
        code = (series.get("modality") or {}).get("code", "")
        if code and code not in modalities:
            modalities.append(code)
    started = _when(raw.get("started"))
    description = raw.get("description") or _coding((raw.get("procedureCode") or [None])[0])[2]
    parsed.studies.append(
        (
            study_uid,
            *started,
            "\\".join(m for m in modalities if m),
            description or "",
            raw.get("numberOfSeries"),
            raw.get("numberOfInstances"),
        )
    )


_EXTRACTORS: dict[str, Callable[[dict[str, Any], ParsedResource, Resolver], None]] = {
    "Patient": _patient,
    "Encounter": _encounter_resource,
    "Condition": _condition,
    "Observation": _observation,
    "MedicationRequest": _medication_request,
    "MedicationStatement": _medication_statement,
    "Procedure": _procedure,
    "DiagnosticReport": _diagnostic_report,
    "ImagingStudy": _imaging_study,
    "AllergyIntolerance": _allergy,
}
