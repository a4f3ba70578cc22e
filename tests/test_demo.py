"""The README's first command ends in `workstation demo`: without a display it must make the demo
data, index it, import records, run an analysis and say where everything went."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_headless_demo_indexes_imports_runs_and_reports(tmp_path: Path) -> None:
    store = tmp_path / "store"
    env = {**os.environ, "WORKSTATION_HOME": str(store), "QT_QPA_PLATFORM": "offscreen"}
    env.pop("DISPLAY", None)
    done = subprocess.run(
        [sys.executable, "-m", "workstation.cli", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "ran headless" in out and str(store) in out

    from workstation.dicom.catalog import Catalog
    from workstation.records.store import RecordsStore

    with Catalog(store) as catalog:
        patients = catalog.tree()
    modalities = sorted(
        s["modality"] for p in patients for st in p["studies"] for s in st["series"]
    )
    assert len(patients) == 3
    assert modalities == ["CT", "CT", "CT", "MR", "SEG"]  # the threshold run's SEG is indexed
    assert all(
        s["synthetic"]
        for p in patients
        for st in p["studies"]
        for s in st["series"]
        if s["modality"] != "SEG"
    )
    with RecordsStore(store) as records:
        linked = [p for p in records.patients() if p["imaging_patient_ids"]]
    assert len(linked) == 3  # every records patient finds their imaging by MRN

    run = json.loads((store / "demo-runs" / "threshold-bone" / "run.json").read_text())
    assert run["analysis"]["id"] == "threshold.segment"
    assert {o["kind"] for o in run["outputs"]} >= {"dicom_seg", "nifti", "csv"}


def test_demo_images_carry_the_birth_date_and_sex_of_the_demo_records(tmp_path: Path) -> None:
    """The viewer shows the DICOM header beside the records timeline: both must describe the
    same person."""
    import pydicom

    from workstation.demo import make_images, make_records

    patients = make_records(tmp_path / "records", 2, seed=0)
    make_images(tmp_path / "images", patients, seed=0)
    by_mrn = {}
    for bundle_file in (tmp_path / "records").glob("*.json"):
        bundle = json.loads(bundle_file.read_text(encoding="utf-8"))
        for entry in bundle["entry"]:
            if entry["resource"]["resourceType"] == "Patient":
                for identifier in entry["resource"]["identifier"]:
                    by_mrn[identifier["value"]] = entry["resource"]
    for patient in patients:
        fhir = by_mrn[patient.mrn]
        assert fhir["birthDate"] and fhir["gender"] in {"male", "female"}
        for image in (tmp_path / "images" / patient.mrn).rglob("*.dcm"):
            header = pydicom.dcmread(image, stop_before_pixels=True)
            assert header.PatientBirthDate == fhir["birthDate"].replace("-", "")
            assert header.PatientSex == {"male": "M", "female": "F"}.get(fhir["gender"], "O")


def test_demo_records_show_each_demo_study_on_the_timeline_and_open_it(tmp_path: Path) -> None:
    """The records timeline's imaging lane lists the patient's DICOM studies the demo wrote,
    each marked as in the image index, so clicking it opens the study; running the demo again
    into the same store shows the same studies, not stale copies that cannot open."""
    import pydicom

    from workstation.demo import add_imaging_studies, make_images, make_records
    from workstation.dicom.index import index_paths
    from workstation.records.store import RecordsStore

    store = tmp_path / "store"
    seen = []
    for _ in range(2):  # what running `workstation demo` twice does
        patients = make_records(tmp_path / "records", 2, seed=0)
        images = make_images(tmp_path / "images", patients, seed=0)
        assert add_imaging_studies(patients, images) == 3  # two CTs, the first patient's MR
        index_paths(store, [tmp_path / "images"])
        with RecordsStore(store) as records:
            records.import_paths([tmp_path / "records"])
            markers = {}
            for patient in patients:
                written = {
                    pydicom.dcmread(f, stop_before_pixels=True).StudyInstanceUID
                    for f in images
                    if f.parts[-3] == patient.mrn
                }
                markers[patient.mrn] = records.timeline(patient.mrn).studies
                on_day = [m for m in markers[patient.mrn] if m.time_text.startswith("2024-03-14")]
                assert {m.study_uid for m in on_day} == written
                assert all(m.indexed for m in on_day)
            seen.append(markers)
    assert seen[0] == seen[1]


@pytest.mark.parametrize(
    "fhir, dicom", [("1973-07-14", "19730714"), ("1973-07", ""), ("1973", ""), ("", "")]
)
def test_only_full_birth_dates_go_into_the_demo_headers(fhir: str, dicom: str) -> None:
    """DICOM DA has no partial dates: a FHIR birth date of a year or a month is left out."""
    from workstation.demo import dicom_date

    assert dicom_date(fhir) == dicom
