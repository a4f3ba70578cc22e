"""Synthetic patient records in the shape of Synthea's FHIR R4 transaction bundles.

Why: the records RNN needs demo weights trained on data the project can make, and the importer
needs realistic input (many identifiers, extensions, panels with components, UCUM units, full-URL
references, ImagingStudy UIDs) rather than hand-trimmed samples. Every Patient is tagged
`urn:workstation:tag|synthetic`, so the workstation shows it as synthetic.

Risk mechanism (the ground truth a model should learn)
------------------------------------------------------
Each patient is followed for 4 years with a visit about every 91 days. Latent conditions are drawn
once: chronic kidney disease (p=0.30), hypertension (p=0.40), diabetes (p=0.25); each is recorded
as a Condition at the first visit.

- Serum creatinine (LOINC 2160-0, mg/dL) starts at 0.8 + N(0, 0.1) and rises linearly by
  0.05 + 0.35*CKD + 0.10*diabetes + N(0, 0.05) mg/dL per year, plus N(0, 0.05) visit noise.
  One patient in ten has one visit reported in umol/L (same code), to exercise unit conversion.
- Systolic BP (8480-6, mm[Hg], a component of the 85354-9 panel) is 118 + 18*hypertension +
  N(0, 8) plus 2 mm[Hg] per year and N(0, 6) visit noise; diastolic follows it.
- At each visit after the first, the outcome "Acute renal failure syndrome" (SNOMED 14669001)
  starts with probability sigmoid(-7.0 + 4.0*(creatinine - 1.0) + 0.05*(systolic - 130)
  + 0.8*diabetes). It is recorded as a Condition at that visit and follow-up ends one visit later.
- Glucose, HbA1c, weight, height, BMI and smoking status are recorded too; glucose and HbA1c
  depend on diabetes only, the rest is noise.

The same seed gives byte-identical bundles (no clock, no global random state). `outcomes.tsv`
beside the bundles lists each patient's outcome and latent conditions for evaluation.
"""

from __future__ import annotations

import json
import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition"
SYNTHETIC_TAG = {"system": "urn:workstation:tag", "code": "synthetic", "display": "Synthetic data"}

OUTCOME = (SNOMED, "14669001", "Acute renal failure syndrome (disorder)")
CONDITIONS = {
    "ckd": (SNOMED, "431855005", "Chronic kidney disease stage 1 (disorder)"),
    "hypertension": (SNOMED, "59621000", "Essential hypertension (disorder)"),
    "diabetes": (SNOMED, "44054006", "Diabetes mellitus type 2 (disorder)"),
}
MEDICATIONS = {
    "hypertension": (RXNORM, "314076", "lisinopril 10 MG Oral Tablet"),
    "diabetes": (
        RXNORM,
        "860975",
        "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet",
    ),
}
VISITS = 17
VISIT_DAYS = 91
ZONE = timezone(timedelta(hours=-5))
FOLLOW_UP_END = datetime(2025, 1, 1, tzinfo=ZONE)
FIRST_NAMES = (
    "Ana",
    "Ben",
    "Chloe",
    "Dev",
    "Eli",
    "Fay",
    "Gus",
    "Hana",
    "Ivo",
    "Jun",
    "Kai",
    "Lea",
)
FAMILY_NAMES = ("Abbott", "Baker", "Cruz", "Diaz", "Evans", "Fox", "Gray", "Hale", "Ito", "Jones")


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@dataclass(frozen=True)
class SyntheticPatient:
    """The ground truth behind one synthetic bundle."""

    patient_id: str
    mrn: str
    ckd: bool
    hypertension: bool
    diabetes: bool
    outcome: bool
    outcome_time: str


class _Builder:
    """Builds one patient's transaction bundle; every id comes from the seeded generator."""

    def __init__(self, rng: np.random.Generator, index: int) -> None:
        self.rng = rng
        self.index = index
        self.entries: list[dict[str, Any]] = []
        # ids come from their own seeded stream: numpy draws of 16 bytes are ~100x slower
        self.ids = random.Random(int(rng.integers(2**63)))

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.ids.getrandbits(128), version=4))

    def new_uid(self) -> str:
        """A DICOM UID under the 2.25 (UUID) root."""
        return f"2.25.{self.ids.getrandbits(128)}"

    def add(self, resource: dict[str, Any]) -> str:
        """Append a resource as a POST entry with a urn:uuid full URL; return that URL."""
        resource.setdefault("id", self.new_id())
        url = f"urn:uuid:{resource['id']}"
        self.entries.append(
            {
                "fullUrl": url,
                "resource": resource,
                "request": {"method": "POST", "url": resource["resourceType"]},
            }
        )
        return url

    def digits(self, n: int) -> str:
        return "".join(str(d) for d in self.rng.integers(0, 10, n))


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": round(float(value), 2), "unit": unit, "system": UCUM, "code": unit}


def _stamp(moment: datetime) -> str:
    return moment.astimezone(ZONE).isoformat(timespec="seconds")


def _identifier(type_code: str, display: str, system: str, value: str) -> dict[str, Any]:
    return {
        "type": {
            "coding": [{"system": V2_0203, "code": type_code, "display": display}],
            "text": display,
        },
        "system": system,
        "value": value,
    }


def _patient(b: _Builder, mrn: str, start: datetime) -> dict[str, Any]:
    rng = b.rng
    patient_id = b.new_id()
    given = FIRST_NAMES[int(rng.integers(len(FIRST_NAMES)))]
    family = FAMILY_NAMES[int(rng.integers(len(FAMILY_NAMES)))]
    gender = "female" if rng.random() < 0.5 else "male"
    birth = start - timedelta(days=int(rng.integers(40 * 365, 80 * 365)))
    race = [("2106-3", "White"), ("2054-5", "Black or African American"), ("2028-9", "Asian")][
        int(rng.integers(3))
    ]
    hispanic = rng.random() < 0.2
    ethnicity = (
        ("2135-2", "Hispanic or Latino") if hispanic else ("2186-5", "Not Hispanic or Latino")
    )
    return {
        "resourceType": "Patient",
        "id": patient_id,
        "meta": {"profile": [f"{US_CORE}/us-core-patient"], "tag": [SYNTHETIC_TAG]},
        "text": {
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml">Synthetic patient</div>',
        },
        "extension": [
            {
                "url": f"{US_CORE}/us-core-race",
                "extension": [
                    {
                        "url": "ombCategory",
                        "valueCoding": {
                            "system": "urn:oid:2.16.840.1.113883.6.238",
                            "code": race[0],
                            "display": race[1],
                        },
                    },
                    {"url": "text", "valueString": race[1]},
                ],
            },
            {
                "url": f"{US_CORE}/us-core-ethnicity",
                "extension": [
                    {
                        "url": "ombCategory",
                        "valueCoding": {
                            "system": "urn:oid:2.16.840.1.113883.6.238",
                            "code": ethnicity[0],
                            "display": ethnicity[1],
                        },
                    },
                    {"url": "text", "valueString": ethnicity[1]},
                ],
            },
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
                "valueString": f"{FAMILY_NAMES[int(rng.integers(len(FAMILY_NAMES)))]}",
            },
            {"url": f"{US_CORE}/us-core-birthsex", "valueCode": gender[0].upper()},
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
                "valueAddress": {"city": "Springfield", "state": "Massachusetts", "country": "US"},
            },
            {
                "url": "http://synthetichealth.github.io/synthea/disability-adjusted-life-years",
                "valueDecimal": round(float(rng.random()), 3),
            },
            {
                "url": "http://synthetichealth.github.io/synthea/quality-adjusted-life-years",
                "valueDecimal": round(float(40 + 20 * rng.random()), 3),
            },
        ],
        "identifier": [
            {"system": "https://github.com/synthetichealth/synthea", "value": patient_id},
            _identifier("MR", "Medical Record Number", "http://hospital.smarthealthit.org", mrn),
            _identifier(
                "SS",
                "Social Security Number",
                "http://hl7.org/fhir/sid/us-ssn",
                f"999-{b.digits(2)}-{b.digits(4)}",
            ),
            _identifier(
                "DL",
                "Driver's license number",
                "urn:oid:2.16.840.1.113883.4.3.25",
                f"S99{b.digits(6)}",
            ),
            _identifier(
                "PPN",
                "Passport Number",
                "http://standardhealthrecord.org/fhir/StructureDefinition/passportNumber",
                f"X{b.digits(8)}X",
            ),
        ],
        "name": [{"use": "official", "family": family, "given": [given], "prefix": ["Mx."]}],
        "telecom": [
            {"system": "phone", "value": f"555-{b.digits(3)}-{b.digits(4)}", "use": "home"}
        ],
        "gender": gender,
        "birthDate": birth.date().isoformat(),
        "address": [
            {
                "line": [f"{int(rng.integers(1, 999))} Main Street"],
                "city": "Springfield",
                "state": "MA",
                "postalCode": "01101",
                "country": "US",
            }
        ],
        "maritalStatus": _concept(
            "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "M", "Married"
        ),
        "multipleBirthBoolean": False,
        "communication": [
            {"language": _concept("urn:ietf:bcp:47", "en-US", "English (United States)")}
        ],
    }


def _observation(
    b: _Builder,
    patient: str,
    encounter: str,
    when: datetime,
    category: str,
    code: tuple[str, str],
    **value: Any,
) -> str:
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": OBS_CATEGORY,
                        "code": category,
                        "display": category.replace("-", " ").title(),
                    }
                ]
            }
        ],
        "code": _concept(LOINC, *code),
        "subject": {"reference": patient},
        "encounter": {"reference": encounter},
        "effectiveDateTime": _stamp(when),
        "issued": _stamp(when + timedelta(minutes=30)),
        **value,
    }
    return b.add(resource)


def _bundle_for(rng: np.random.Generator, index: int) -> tuple[dict[str, Any], SyntheticPatient]:
    b = _Builder(rng, index)
    start = FOLLOW_UP_END - timedelta(days=VISITS * VISIT_DAYS + int(rng.integers(0, 60)))
    mrn = f"MRN{index + 1:06d}{b.digits(2)}"
    ckd, hypertension, diabetes = (bool(rng.random() < p) for p in (0.30, 0.40, 0.25))
    flags = {"ckd": ckd, "hypertension": hypertension, "diabetes": diabetes}

    b.add(
        {
            "resourceType": "Organization",
            "id": b.new_id(),
            "name": "Springfield General Hospital",
            "active": True,
            "identifier": [
                {"system": "https://github.com/synthetichealth/synthea", "value": b.new_id()}
            ],
        }
    )
    b.add(
        {
            "resourceType": "Practitioner",
            "id": b.new_id(),
            "active": True,
            "identifier": [
                {"system": "http://hl7.org/fhir/sid/us-npi", "value": f"99999{b.digits(5)}"}
            ],
            "name": [{"family": "Osler", "given": ["Will"], "prefix": ["Dr."]}],
        }
    )
    patient_resource = _patient(b, mrn, start)
    patient = b.add(patient_resource)
    patient_name = " ".join(
        (*patient_resource["name"][0]["given"], patient_resource["name"][0]["family"])
    )
    if rng.random() < 0.2:
        b.add(
            {
                "resourceType": "AllergyIntolerance",
                "clinicalStatus": _concept(
                    "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "active",
                    "Active",
                ),
                "verificationStatus": _concept(
                    "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                    "confirmed",
                    "Confirmed",
                ),
                "type": "allergy",
                "category": ["medication"],
                "criticality": "low",
                "code": _concept(RXNORM, "7980", "Penicillin G"),
                "patient": {"reference": patient},
                "recordedDate": _stamp(start),
            }
        )

    creatinine0 = 0.8 + rng.normal(0, 0.1)
    creatinine_slope = 0.05 + 0.35 * ckd + 0.10 * diabetes + rng.normal(0, 0.05)
    systolic0 = 118 + 18 * hypertension + rng.normal(0, 8)
    height = rng.normal(170, 9)
    weight0 = rng.normal(80, 12)
    smoker = rng.random() < 0.2
    umol_visit = int(rng.integers(1, VISITS)) if rng.random() < 0.1 else -1
    outcome_time = ""
    last_visit = VISITS

    for visit in range(VISITS):
        if visit > last_visit:
            break
        when = start + timedelta(
            days=visit * VISIT_DAYS,
            hours=int(rng.integers(8, 17)),
            minutes=int(rng.integers(0, 60)),
        )
        years = visit * VISIT_DAYS / 365.25
        encounter = b.add(
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                },
                "type": [_concept(SNOMED, "185349003", "Encounter for check up (procedure)")],
                "subject": {
                    "reference": patient,
                    "display": patient_name,
                },
                "participant": [
                    {
                        "individual": {
                            "reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999999999",
                            "display": "Dr. Will Osler",
                        }
                    }
                ],
                "period": {"start": _stamp(when), "end": _stamp(when + timedelta(minutes=30))},
                "serviceProvider": {
                    "reference": "Organization?identifier=https://github.com/synthetichealth/synthea|springfield",
                    "display": "Springfield General Hospital",
                },
            }
        )
        b.add(
            {
                "resourceType": "Claim",
                "status": "active",
                "use": "claim",
                "type": _concept(
                    "http://terminology.hl7.org/CodeSystem/claim-type",
                    "professional",
                    "Professional",
                ),
                "patient": {"reference": patient},
                "created": _stamp(when + timedelta(minutes=30)),
                "provider": {
                    "reference": "Organization?identifier=https://github.com/synthetichealth/synthea|springfield"
                },
                "priority": _concept(
                    "http://terminology.hl7.org/CodeSystem/processpriority", "normal", "Normal"
                ),
                "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "Medicare"}}],
                "item": [
                    {
                        "sequence": 1,
                        "productOrService": _concept(
                            SNOMED, "185349003", "Encounter for check up (procedure)"
                        ),
                        "encounter": [{"reference": encounter}],
                    }
                ],
                "total": {"value": 136.8, "currency": "USD"},
            }
        )
        if visit == 0:
            for name, present in flags.items():
                if not present:
                    continue
                system, code, display = CONDITIONS[name]
                b.add(
                    {
                        "resourceType": "Condition",
                        "clinicalStatus": _concept(CONDITION_CLINICAL, "active", "Active"),
                        "verificationStatus": _concept(
                            CONDITION_VERIFICATION, "confirmed", "Confirmed"
                        ),
                        "category": [
                            _concept(
                                "http://terminology.hl7.org/CodeSystem/condition-category",
                                "encounter-diagnosis",
                                "Encounter Diagnosis",
                            )
                        ],
                        "code": _concept(system, code, display),
                        "subject": {"reference": patient},
                        "encounter": {"reference": encounter},
                        "onsetDateTime": _stamp(when),
                        "recordedDate": _stamp(when),
                    }
                )
                if name in MEDICATIONS:
                    b.add(
                        {
                            "resourceType": "MedicationRequest",
                            "status": "active",
                            "intent": "order",
                            "medicationCodeableConcept": _concept(*MEDICATIONS[name]),
                            "subject": {"reference": patient},
                            "encounter": {"reference": encounter},
                            "authoredOn": _stamp(when),
                            "requester": {
                                "reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999999999"
                            },
                            "dosageInstruction": [
                                {
                                    "sequence": 1,
                                    "asNeededBoolean": False,
                                    "timing": {
                                        "repeat": {"frequency": 1, "period": 1.0, "periodUnit": "d"}
                                    },
                                }
                            ],
                        }
                    )

        creatinine = max(0.3, creatinine0 + creatinine_slope * years + rng.normal(0, 0.05))
        systolic = systolic0 + 2.0 * years + rng.normal(0, 6)
        diastolic = 0.55 * systolic + 10 + rng.normal(0, 4)
        glucose = rng.normal(95 + 55 * diabetes, 12)
        weight = weight0 + rng.normal(0, 1.5)

        _observation(
            b,
            patient,
            encounter,
            when,
            "vital-signs",
            ("85354-9", "Blood pressure panel with all children optional"),
            component=[
                {
                    "code": _concept(LOINC, "8462-4", "Diastolic Blood Pressure"),
                    "valueQuantity": _quantity(diastolic, "mm[Hg]"),
                },
                {
                    "code": _concept(LOINC, "8480-6", "Systolic Blood Pressure"),
                    "valueQuantity": _quantity(systolic, "mm[Hg]"),
                },
            ],
        )
        _observation(
            b,
            patient,
            encounter,
            when,
            "vital-signs",
            ("29463-7", "Body Weight"),
            valueQuantity=_quantity(weight, "kg"),
        )
        _observation(
            b,
            patient,
            encounter,
            when,
            "vital-signs",
            ("8302-2", "Body Height"),
            valueQuantity=_quantity(height, "cm"),
        )
        _observation(
            b,
            patient,
            encounter,
            when,
            "vital-signs",
            ("39156-5", "Body mass index (BMI) [Ratio]"),
            valueQuantity=_quantity(weight / (height / 100) ** 2, "kg/m2"),
        )
        if visit == umol_visit:
            creatinine_value = _quantity(creatinine * 88.4, "umol/L")
        else:
            creatinine_value = _quantity(creatinine, "mg/dL")
        lab_time = when + timedelta(minutes=10)
        creatinine_url = _observation(
            b,
            patient,
            encounter,
            lab_time,
            "laboratory",
            ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma"),
            valueQuantity=creatinine_value,
        )
        glucose_url = _observation(
            b,
            patient,
            encounter,
            lab_time,
            "laboratory",
            ("2339-0", "Glucose [Mass/volume] in Blood"),
            valueQuantity=_quantity(glucose, "mg/dL"),
        )
        results = [creatinine_url, glucose_url]
        if diabetes:
            results.append(
                _observation(
                    b,
                    patient,
                    encounter,
                    lab_time,
                    "laboratory",
                    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"),
                    valueQuantity=_quantity(rng.normal(7.4, 0.6), "%"),
                )
            )
        _observation(
            b,
            patient,
            encounter,
            when,
            "survey",
            ("72166-2", "Tobacco smoking status"),
            valueCodeableConcept=_concept(
                SNOMED,
                *(
                    ("449868002", "Smokes tobacco daily (finding)")
                    if smoker
                    else ("266919005", "Never smoked tobacco (finding)")
                ),
            ),
        )
        b.add(
            {
                "resourceType": "DiagnosticReport",
                "status": "final",
                "category": [
                    _concept("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB", "Laboratory")
                ],
                "code": _concept(LOINC, "51990-0", "Basic metabolic panel - Blood"),
                "subject": {"reference": patient},
                "encounter": {"reference": encounter},
                "effectiveDateTime": _stamp(lab_time),
                "issued": _stamp(lab_time + timedelta(hours=2)),
                "result": [{"reference": url} for url in results],
            }
        )
        if ckd and visit in (0, VISITS // 2):
            _imaging_study(b, patient, encounter, when + timedelta(hours=1))

        hazard = _sigmoid(
            -7.0 + 4.0 * (creatinine - 1.0) + 0.05 * (systolic - 130) + 0.8 * diabetes
        )
        if visit > 0 and not outcome_time and rng.random() < hazard:
            outcome_time = _stamp(when)
            last_visit = visit + 1
            system, code, display = OUTCOME
            b.add(
                {
                    "resourceType": "Condition",
                    "clinicalStatus": _concept(CONDITION_CLINICAL, "active", "Active"),
                    "verificationStatus": _concept(
                        CONDITION_VERIFICATION, "confirmed", "Confirmed"
                    ),
                    "code": _concept(system, code, display),
                    "subject": {"reference": patient},
                    "encounter": {"reference": encounter},
                    "onsetDateTime": outcome_time,
                    "recordedDate": outcome_time,
                }
            )
            b.add(
                {
                    "resourceType": "Procedure",
                    "status": "completed",
                    "code": _concept(SNOMED, "265764009", "Renal dialysis (procedure)"),
                    "subject": {"reference": patient},
                    "encounter": {"reference": encounter},
                    "performedPeriod": {
                        "start": _stamp(when + timedelta(hours=3)),
                        "end": _stamp(when + timedelta(hours=7)),
                    },
                }
            )

    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": b.entries}
    truth = SyntheticPatient(
        patient_resource["id"], mrn, ckd, hypertension, diabetes, bool(outcome_time), outcome_time
    )
    return bundle, truth


def _imaging_study(b: _Builder, patient: str, encounter: str, when: datetime) -> None:
    study_uid, series_uid, instance_uid = b.new_uid(), b.new_uid(), b.new_uid()
    b.add(
        {
            "resourceType": "ImagingStudy",
            "identifier": [
                {"use": "official", "system": "urn:ietf:rfc:3986", "value": f"urn:oid:{study_uid}"}
            ],
            "status": "available",
            "subject": {"reference": patient},
            "encounter": {"reference": encounter},
            "started": _stamp(when),
            "numberOfSeries": 1,
            "numberOfInstances": 1,
            "procedureCode": [_concept(SNOMED, "169070004", "CT of abdomen")],
            "series": [
                {
                    "uid": series_uid,
                    "number": 1,
                    "modality": {
                        "system": "http://dicom.nema.org/resources/ontology/DCM",
                        "code": "CT",
                        "display": "Computed Tomography",
                    },
                    "numberOfInstances": 1,
                    "bodySite": {"system": SNOMED, "code": "818983003", "display": "Abdomen"},
                    "started": _stamp(when),
                    "instance": [
                        {
                            "uid": instance_uid,
                            "sopClass": {
                                "system": "urn:ietf:rfc:3986",
                                "code": "urn:oid:1.2.840.10008.5.1.4.1.1.2",
                            },
                            "number": 1,
                        }
                    ],
                }
            ],
        }
    )


def generate(patients: int, seed: int) -> Iterator[tuple[dict[str, Any], SyntheticPatient]]:
    """(transaction bundle, ground truth) per patient; the same seed gives the same bundles."""
    root = np.random.SeedSequence(seed)
    for index, child in enumerate(root.spawn(patients)):
        yield _bundle_for(np.random.default_rng(child), index)


def write_bundles(out_dir: Path, patients: int, seed: int) -> list[SyntheticPatient]:
    """Write one bundle per patient (Synthea's file naming) and `outcomes.tsv`; return the truth."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    truths = []
    for bundle, truth in generate(patients, seed):
        patient = next(
            e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
        )
        given, family = patient["name"][0]["given"][0], patient["name"][0]["family"]
        name = f"{given}_{family}_{truth.patient_id}.json"
        (out_dir / name).write_text(json.dumps(bundle, indent=1), encoding="utf-8")
        truths.append(truth)
    lines = ["patient_id\tmrn\toutcome\toutcome_time\tckd\thypertension\tdiabetes"]
    lines += [
        f"{t.patient_id}\t{t.mrn}\t{int(t.outcome)}\t{t.outcome_time}\t{int(t.ckd)}\t{int(t.hypertension)}\t{int(t.diabetes)}"
        for t in truths
    ]
    (out_dir / "outcomes.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return truths
