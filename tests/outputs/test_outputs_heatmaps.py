"""Heat map colour maps and units: the host's list is the viewer's, the docs list it, and units
reach DICOM as UCUM codes with a note when they were changed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from workstation.core.results import HeatMap
from workstation.core.volume import Volume
from workstation.outputs import write_results
from workstation.outputs.heatmaps import COLORMAPS, colormap_name, is_ucum, ucum_units

ROOT = Path(__file__).resolve().parents[2]


def test_the_host_accepts_exactly_the_colour_maps_the_viewer_draws() -> None:
    from workstation.gui.window_level import COLOR_MAPS  # numpy only at import; no Qt

    assert set(COLORMAPS) == set(COLOR_MAPS)


def test_the_plugin_guide_lists_every_colour_map() -> None:
    text = (ROOT / "docs" / "writing-plugins.md").read_text()
    line = next(line for line in text.splitlines() if "`HeatMap.colormap` is one of" in line)
    following = text[text.index(line) :].split("\n- ")[0]
    for name in COLORMAPS:
        assert f"`{name}`" in following, name


@pytest.mark.parametrize(
    ("given", "shown", "noted"),
    [
        ("hot", "hot", False),
        ("Gray", "grey", False),
        ("", "inferno", False),
        ("coolwarm", "coolwarm", False),
        ("jet", "inferno", True),
        ("nonsense", "inferno", True),
    ],
)
def test_colormap_names(given, shown, noted) -> None:
    name, note = colormap_name(given)
    assert name == shown and bool(note) == noted
    if noted:
        assert repr(given) in note and "grey, inferno" in note


@pytest.mark.parametrize("code", ["1", "%", "mL", "ml", "mm", "mm2/s", "Bq/mL", "[hnsf'U]", "mGy"])
def test_ucum_codes_pass_unchanged(code) -> None:
    assert is_ucum(code) and ucum_units(code) == (code, None)


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("fraction", "1"),
        ("probability", "1"),
        ("percent", "%"),
        ("HU", "[hnsf'U]"),
        ("evidence (0-1)", "1"),
        ("nonsense units", "1"),
    ],
)
def test_words_become_ucum_codes_with_a_note(given, code) -> None:
    written, note = ucum_units(given)
    assert written == code and not is_ucum(given)
    assert note and repr(given) in note and "UCUM" in note


def test_write_results_records_how_a_heat_map_is_shown(tmp_path) -> None:
    volume = Volume(np.linspace(0, 1, 60, dtype=np.float32).reshape(3, 4, 5))
    heat = HeatMap(name="p", volume=volume, value_range=(0.0, 0.5), units="%", colormap="gray")
    write_results([heat], tmp_path, {"analysis_id": "a.b"})
    manifest = json.loads((tmp_path / "run.json").read_text())
    (entry,) = manifest["results"]
    assert entry["colormap"] == "grey" and entry["value_range"] == [0.0, 0.5]
    assert entry["units"] == "%" and entry["units_ucum"] == "%"

    odd = HeatMap(name="q", volume=volume, colormap="nonsense")
    write_results([odd], tmp_path / "odd", {"analysis_id": "a.b"})
    manifest = json.loads((tmp_path / "odd" / "run.json").read_text())
    assert manifest["results"][0]["colormap"] == "inferno"
    assert any("colormap 'nonsense' is not one the viewer has" in n for n in manifest["notes"])


@pytest.mark.parametrize(("given", "code"), [("ML", "mL"), ("Ml", "mL"), ("Mm", "mm")])
def test_a_known_unit_in_the_wrong_case_is_corrected_with_a_note(given, code) -> None:
    # "ML" is valid UCUM, but megalitres: a heat map in millilitres must not say so silently
    written, note = ucum_units(given)
    assert written == code
    assert note and repr(given) in note and repr(code) in note and "case" in note
