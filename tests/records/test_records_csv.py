"""CSV lab tables: column mapping, patient by MRN, row errors, idempotent re-import."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from workstation.records import CsvMapping, RecordsStore, import_paths


def test_lab_csv_with_column_mapping(fhir: SimpleNamespace, store: Path, tmp_path: Path) -> None:
    import_paths(store, [fhir.write_json(tmp_path / "p.json", fhir.patient(mrn="MRN-7"))])
    table = tmp_path / "labs.csv"
    table.write_text(
        "MRN,collected,loinc,result,units,name\n"
        "MRN-7,2021-03-04 08:00,2160-0,1.1,mg/dL,Creatinine\n"
        "MRN-7,2021-04-04T08:00:00Z,2160-0,1.4,mg/dL,Creatinine\n"
        "MRN-7,2021-04-04T08:00:00Z,5778-6,yellow,,Color of urine\n"
        "MRN-7,2021-05-04,2160-0,1.6,,Creatinine\n"
        "MRN-7,04/05/2021,2160-0,1.6,mg/dL,Creatinine\n"
        "MRN-9,2021-05-04,2160-0,1.6,mg/dL,Creatinine\n",
        encoding="utf-8",
    )
    mapping = CsvMapping.from_pairs(
        [
            "patient=MRN",
            "time=collected",
            "code=loinc",
            "value=result",
            "unit=units",
            "display=name",
        ]
    )
    result = import_paths(store, [table], csv_mapping=mapping).files[0]
    assert (result.added, result.failed) == (3, 3)
    reasons = {p.location: p.reason for p in result.problems}
    assert reasons["row 5"] == "value 1.6 has no unit (column 'units' is empty)"
    assert "'04/05/2021' is not a FHIR date" in reasons["row 6"]
    assert (
        reasons["row 7"] == "patient 'MRN-9' is not in the records store (import the patient first)"
    )
    with RecordsStore(store) as records:
        timeline = records.timeline("MRN-7")
        assert timeline.observations["2160-0"].values.tolist() == [1.1, 1.4]
        assert timeline.observations["2160-0"].display == "Creatinine"
        assert timeline.observations["5778-6"].texts.tolist() == ["yellow"]
    again = import_paths(store, [table], csv_mapping=mapping).files[0]
    assert (again.added, again.unchanged) == (0, 3)


def test_missing_csv_column_refuses_the_file(store: Path, tmp_path: Path) -> None:
    table = tmp_path / "labs.csv"
    table.write_text("patient,when,code,value,unit\np1,2020-01-01,x,1,mg\n", encoding="utf-8")
    result = import_paths(store, [table]).files[0]
    assert result.error is not None
    assert result.error.startswith("CSV has no column 'time' (columns: patient, when, code")


def test_bad_mapping_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="not FIELD=COLUMN"):
        CsvMapping.from_pairs(["colour=red"])
