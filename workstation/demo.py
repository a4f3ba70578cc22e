"""The demo a new user runs first: synthetic patients with CT/MR studies and records, indexed into
the store, an analysis run on one series, and the window opened on it (or a headless report).

Everything is made here from seeds, so the demo needs no download and gives the same data each
time. It goes through the same commands a user types, so what it prints is what they would see.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEMO_SEED = 7
DEMO_PATIENTS = 3


@dataclass(frozen=True)
class DemoPatient:
    mrn: str
    dicom_name: str
    birth_date: str = ""  # DICOM DA (YYYYMMDD), from the records so both say the same
    sex: str = "O"  # DICOM M / F / O
    bundle_file: Path | None = None  # the patient's FHIR bundle


def has_display() -> bool:
    """A screen to open the window on; offscreen Qt counts as none (the headless demo runs)."""
    if os.environ.get("QT_QPA_PLATFORM", "") in {"offscreen", "minimal"}:
        return False
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def make_records(out_dir: Path, patients: int, seed: int) -> list[DemoPatient]:
    """Synthetic FHIR bundles; their MRNs become the imaging PatientIDs so records link."""
    from workstation.records.synth import write_bundles

    truths = write_bundles(out_dir, patients, seed)
    demo_patients = []
    for truth in truths:
        bundle_file = next(out_dir.glob(f"*_{truth.patient_id}.json"))
        bundle = json.loads(bundle_file.read_text(encoding="utf-8"))
        patient = next(
            e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
        )
        name = patient["name"][0]
        demo_patients.append(
            DemoPatient(
                truth.mrn,
                f"{name['family']}^{name['given'][0]}".upper(),
                dicom_date(str(patient.get("birthDate", ""))),
                {"male": "M", "female": "F"}.get(str(patient.get("gender")), "O"),
                bundle_file,
            )
        )
    return demo_patients


def dicom_date(fhir_date: str) -> str:
    """A FHIR date as a DICOM DA value: only a full date converts ("1973-07-14" ->
    "19730714"); a partial one ("1973", "1973-07") is no valid DA, so the value is left empty."""
    return fhir_date.replace("-", "") if re.fullmatch(r"\d{4}-\d{2}-\d{2}", fhir_date) else ""


def demo_uid(*parts: object) -> str:
    """The same DICOM UID for the same demo object on every run, so running the demo again
    updates what the store and the records hold instead of adding stale copies."""
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=["workstation demo", *(str(p) for p in parts)]))


def make_images(out_dir: Path, patients: list[DemoPatient], seed: int) -> list[Path]:
    """A CT study for every patient and an MR series for the first, all marked synthetic."""
    from workstation.testing.phantoms import write_ct_phantom_series, write_mr_phantom_series

    written: list[Path] = []
    for number, patient in enumerate(patients):
        common = {
            "patient_name": patient.dicom_name,
            "birth_date": patient.birth_date,
            "sex": patient.sex,
        }
        written += write_ct_phantom_series(
            out_dir / patient.mrn / "ct",
            patient_id=patient.mrn,
            seed=seed + number,
            lesions=2 + number,
            study_uid=demo_uid(seed, patient.mrn, "CT study"),
            series_uid=demo_uid(seed, patient.mrn, "CT series"),
            **common,
        )
        if number == 0:
            written += write_mr_phantom_series(
                out_dir / patient.mrn / "mr",
                patient_id=patient.mrn,
                seed=seed,
                study_uid=demo_uid(seed, patient.mrn, "MR study"),
                series_uid=demo_uid(seed, patient.mrn, "MR series"),
                **common,
            )
    return written


def add_imaging_studies(patients: list[DemoPatient], images: list[Path]) -> int:
    """Name in each patient's records the DICOM studies the demo wrote for them (one
    ImagingStudy per study, by Study Instance UID), as a hospital's records would, so the
    records timeline shows them and opens them. Returns how many were added."""
    import pydicom

    by_folder: dict[Path, list[Path]] = {}
    for image in images:
        by_folder.setdefault(image.parent, []).append(image)
    added = 0
    for patient in patients:
        if patient.bundle_file is None:
            continue
        bundle = json.loads(patient.bundle_file.read_text(encoding="utf-8"))
        subject = next(
            e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
        )
        for _, files in sorted(by_folder.items()):
            header = pydicom.dcmread(files[0], stop_before_pixels=True)
            if header.PatientID == patient.mrn:
                entry = imaging_study_entry(header, subject, len(files))
                bundle["entry"] = [
                    e for e in bundle["entry"] if e.get("fullUrl") != entry["fullUrl"]
                ] + [entry]  # once, however often this runs on the same bundle
                added += 1
        patient.bundle_file.write_text(json.dumps(bundle, indent=1), encoding="utf-8")
    return added


def imaging_study_entry(header: Any, subject: str, instances: int) -> dict[str, Any]:
    """A FHIR ImagingStudy bundle entry for the one-series study of this DICOM header."""
    from uuid import NAMESPACE_OID, uuid5

    day = str(header.StudyDate)
    identifier = str(uuid5(NAMESPACE_OID, str(header.StudyInstanceUID)))
    modality = {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": header.Modality}
    resource = {
        "resourceType": "ImagingStudy",
        "id": identifier,
        "identifier": [
            {
                "use": "official",
                "system": "urn:ietf:rfc:3986",
                "value": f"urn:oid:{header.StudyInstanceUID}",
            }
        ],
        "status": "available",
        "subject": {"reference": subject},
        "started": f"{day[:4]}-{day[4:6]}-{day[6:8]}",  # StudyTime has no time zone
        "description": str(header.get("StudyDescription", "")),
        "numberOfSeries": 1,
        "numberOfInstances": instances,
        "series": [
            {
                "uid": str(header.SeriesInstanceUID),
                "number": int(header.get("SeriesNumber") or 1),
                "modality": modality,
                "description": str(header.get("SeriesDescription", "")),
                "numberOfInstances": instances,
            }
        ],
    }
    return {
        "fullUrl": f"urn:uuid:{identifier}",
        "resource": resource,
        "request": {"method": "POST", "url": "ImagingStudy"},
    }


def run_demo(store: Path, cli: Callable[[list[str]], int], open_window: bool) -> int:
    """Make, index, import, analyse; then open the window or report where everything went."""
    data = store / "demo-data"
    say = print
    say(f"Demo store: {store}")

    say("\n== Making synthetic patients (records and imaging) ==")
    patients = make_records(data / "records", DEMO_PATIENTS, DEMO_SEED)
    images = make_images(data / "dicom", patients, DEMO_SEED)
    add_imaging_studies(patients, images)
    say(f"{len(patients)} patients, {len(images)} DICOM files under {data}")

    say("\n== Indexing the DICOM folder ==")
    if (code := cli(["--store", str(store), "index", str(data / "dicom")])) != 0:
        return code

    say("\n== Importing the patients' records ==")
    if (code := cli(["--store", str(store), "records", "import", str(data / "records")])) != 0:
        return code

    from workstation.dicom.catalog import Catalog

    with Catalog(store) as catalog:
        ct_series = [
            series["series_id"]
            for patient in catalog.tree(patients[0].mrn)
            for study in patient["studies"]
            for series in study["series"]
            if series["modality"] == "CT"
        ]
    if not ct_series:
        say("no CT series was indexed; see `workstation ls --errors`")
        return 1

    say("\n== Running the threshold analysis on the first patient's CT ==")
    run_dir = store / "demo-runs" / "threshold-bone"
    code = cli(
        [
            "--store", str(store), "run", "threshold.segment",
            "--series", ct_series[0], "--out", str(run_dir), "--param", "lower=300",
        ]
    )  # fmt: skip
    if code != 0:
        return code

    say("\n== What the store holds now ==")
    cli(["--store", str(store), "ls"])
    say(f"\nRecords: workstation --store {store} records show {patients[0].mrn}")
    say(f"Analysis results and run.json: {run_dir}")
    if open_window:
        say("\n== Opening the main window ==")
        return cli(["--store", str(store), "gui"])
    say("\nNo display: the demo ran headless. With a display, `workstation` opens the window.")
    return 0


def main_from_cli(store: Path) -> int:
    from workstation.cli import main

    sys.stdout.flush()
    return run_demo(store, main, open_window=has_display())
