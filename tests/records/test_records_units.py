"""Units: UCUM conversions where defined, mixed units flagged, unconvertible values kept apart."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from workstation.records import RecordsStore, import_paths
from workstation.records.units import conversion, convert


@pytest.mark.parametrize(
    ("value", "source", "target", "code", "expected"),
    [
        (1.0, "mg/dL", "umol/L", "2160-0", 88.40),  # creatinine
        (180.156, "mg/dL", "mmol/L", "2339-0", 10.0),  # glucose
        (98.6, "[degF]", "Cel", "", 37.0),
        (100.0, "Cel", "[degF]", "", 212.0),
        (1.0, "kPa", "mm[Hg]", "", 7.50062),
        (2.0, "[lb_av]", "kg", "", 0.907185),
        (5.0, "10*3/uL", "10*9/L", "", 5.0),
    ],
)
def test_defined_conversions(
    value: float, source: str, target: str, code: str, expected: float
) -> None:
    assert convert(np.array([value]), source, target, code)[0] == pytest.approx(expected, rel=1e-4)


def test_undefined_conversions_are_refused() -> None:
    assert conversion("mg/dL", "mmol/L") is None  # needs the analyte's molar mass
    assert conversion("mg/dL", "mmol/L", "4548-4") is None  # HbA1c: no molar mass listed
    assert conversion("kg", "cm") is None
    assert conversion("{beats}/min", "/min") is None


def test_mixed_units_are_flagged_converted_or_kept_apart(
    fhir: SimpleNamespace, store: Path, tmp_path: Path
) -> None:
    resources = [
        fhir.patient(),
        fhir.observation("a", value=1.0, unit="mg/dL", when="2020-01-01"),
        fhir.observation("b", value=1.2, unit="mg/dL", when="2020-02-01"),
        fhir.observation("c", value=132.6, unit="umol/L", when="2020-03-01"),
        fhir.observation("d", code="1234-5", value=3.0, unit="mg/dL", when="2020-01-01"),
        fhir.observation("e", code="1234-5", value=4.0, unit="mg/dL", when="2020-02-01"),
        fhir.observation("f", code="1234-5", value=9.0, unit="{arb'U}", when="2020-03-01"),
    ]
    import_paths(store, [fhir.write_ndjson(tmp_path / "o.ndjson", resources)])
    with RecordsStore(store) as records:
        timeline = records.timeline("p1")
        creatinine = timeline.observations["2160-0"]
        assert creatinine.unit == "mg/dL" and creatinine.mixed_units
        assert set(creatinine.units_seen) == {"mg/dL", "umol/L"}
        np.testing.assert_allclose(creatinine.values, [1.0, 1.2, 1.5], rtol=1e-3)
        other = timeline.observations["1234-5"]
        assert other.mixed_units and other.values.tolist() == [3.0, 4.0]
        assert list(other.other_units) == ["{arb'U}"]
        assert other.other_units["{arb'U}"][1].tolist() == [9.0]
        shown = records.record("p1", codes=["1234-5"])["observations"][0]
        assert shown["unconverted"] == {"{arb'U}": {"count": 1, "values": [9.0]}}
