"""`workstation records import | ls | show | synth` as a user or a pipeline runs them."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from workstation.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_synth_import_ls_show(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store, data = str(tmp_path / "store"), tmp_path / "synth"
    code, out, _ = run(
        capsys, "records", "synth", "--patients", "2", "--seed", "3", "--out", str(data)
    )
    assert code == 0 and "wrote 2 synthetic patient bundles" in out
    code, out, err = run(capsys, "--store", store, "records", "import", str(data))
    assert code == 0, err
    assert "0 failed from 2 files" in out and "not kept: Claim 17, Organization 1" in out
    assert "outcomes.tsv: skipped" in err

    code, out, _ = run(capsys, "--store", store, "records", "ls", "--json")
    patients = json.loads(out)
    assert len(patients) == 2 and all(p["synthetic"] for p in patients)
    mrn = patients[0]["identifiers"][0]
    assert mrn.startswith("MRN")

    code, out, _ = run(capsys, "--store", store, "records", "show", mrn)
    assert code == 0
    assert "[synthetic]" in out and f"MR   {mrn}" in out
    assert "Creatinine [Mass/volume] in Serum or Plasma [2160-0] (mg/dL, " in out
    assert "Systolic Blood Pressure [8480-6] (mm[Hg], 17 values)" in out

    code, out, _ = run(
        capsys,
        "--store",
        store,
        "records",
        "show",
        patients[0]["patient_id"],
        "--json",
        "--code",
        "8480-6",
        "--since",
        "2024-01-01",
    )
    record = json.loads(out)
    assert [o["code"] for o in record["observations"]] == ["8480-6"]
    times = [v["time"] for v in record["observations"][0]["values"]]
    assert times and all(t >= "2024-01-01" for t in times)
    assert all(e["time"] >= "2024-01-01" for e in record["encounters"])


def test_show_unknown_patient_and_bad_date(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = str(tmp_path / "store")
    code, _, err = run(capsys, "--store", store, "records", "show", "NOPE")
    assert code == 1 and "no records patient has id or identifier 'NOPE'" in err


def test_import_with_errors_exits_nonzero_and_names_file_and_entry(
    capsys: pytest.CaptureFixture[str], fhir: SimpleNamespace, tmp_path: Path
) -> None:
    store = str(tmp_path / "store")
    path = fhir.write_json(
        tmp_path / "b.json",
        fhir.bundle([fhir.patient(), fhir.observation("o1", value=3, unit=None)]),
    )
    code, _out, err = run(capsys, "--store", store, "records", "import", str(path))
    assert code == 1
    assert (
        f"{path.resolve()}: entry 1, Observation/o1: Observation valueQuantity 3 has no unit" in err
    )
    code, _, err = run(capsys, "--store", store, "records", "show", "MRN-1", "--since", "yesterday")
    assert code == 2 and "--since: date 'yesterday' is not a FHIR date" in err


def test_empty_store_ls(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "--store", str(tmp_path / "s"), "records", "ls")
    assert code == 0 and "no records patients" in out
