"""Segmentation references numbered differently from the analysis: values it does not produce
are named, not silently scored; `--label-map` maps them; library warnings stay off the terminal
and an empty prediction becomes a note."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import workstation.plugins.manager as plugin_manager
from workstation.cli import main
from workstation.core.volume import Volume
from workstation.evaluation import EvaluationRefused, evaluate, parse_label_map

SHAPE = (8, 16, 16)


def write_nifti(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(Volume(array, spacing=(1.0, 1.0, 1.0)).to_nifti(), str(path))


@pytest.fixture
def phantom_numbered(tmp_path: Path) -> Path:
    """One case numbered like the demo phantoms: 1 body, 4 organ, 6 lesion. The fake segmenter
    finds the organ (image value 1) exactly and never finds the lesion (image value 0.3)."""
    image = np.zeros(SHAPE, np.float32)
    label = np.zeros(SHAPE, np.uint8)
    label[1:7, 2:14, 2:14] = 1  # body
    image[2:5, 4:9, 4:9] = 1.0
    label[2:5, 4:9, 4:9] = 4  # organ
    image[5:7, 10:13, 10:13] = 0.3
    label[5:7, 10:13, 10:13] = 6  # lesion, 18 voxels
    root = tmp_path / "data"
    write_nifti(image, root / "images" / "p1.nii.gz")
    write_nifti(label, root / "labels" / "p1.nii.gz")
    return root


def test_reference_values_the_analysis_does_not_produce_are_named_not_scored(
    phantom_numbered, fake_segmenter, monkeypatch, tmp_path, capsys
):
    monkeypatch.setattr(plugin_manager, "load_registry", lambda *a, **k: fake_segmenter.registry)
    out = tmp_path / "eval"
    code = main(["evaluate", "fake.segment", "--dataset", str(phantom_numbered), "--out", str(out)])
    assert code == 0
    err = capsys.readouterr().err
    assert "reference label values 4, 6 (in 1 of 1 cases) are not labels that fake.segment" in err
    assert "--label-map" in err
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["metrics"]) == {"Organ", "Lesion"}  # no "label 4", "label 6"
    assert summary["scoring"]["reference_values_not_scored"] == [4, 6]
    assert any("are not labels that fake.segment produces" in n for n in summary["notes"])
    header = (out / "cases.csv").read_text().splitlines()[0]
    assert "label_4" not in header and "label_6" not in header


def test_label_map_scores_reference_values_as_the_analysis_labels(
    phantom_numbered, fake_segmenter, tmp_path
):
    out = tmp_path / "eval"
    summary = evaluate(
        "fake.segment",
        phantom_numbered,
        out,
        label_map=parse_label_map("4=1,6=2"),
        registry=fake_segmenter.registry,
    )
    row = summary.rows[0]
    assert row["dice_Organ"] == pytest.approx(1.0)
    assert row["dice_Lesion"] == pytest.approx(0.0)
    assert "'Lesion' (label 2) is empty where the reference has 18 voxels" in row["notes"]
    written = json.loads((out / "summary.json").read_text())
    assert written["scoring"]["label_map"] == {"4": 1, "6": 2}
    assert written["scoring"]["reference_values_not_in_label_map"] == [1]
    assert written["scoring"]["reference_values_not_scored"] == []
    assert any("values 1 (in 1 of 1 cases) are not in --label-map" in n for n in written["notes"])


def test_monai_warnings_do_not_leak_and_an_empty_prediction_is_a_note(
    phantom_numbered, fake_segmenter, tmp_path, capsys
):
    with warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always")
        summary = evaluate(
            "fake.segment",
            phantom_numbered,
            tmp_path / "eval",
            label_map={4: 1, 6: 2},
            registry=fake_segmenter.registry,
        )
    leaked = [str(w.message) for w in raised if "monai" in (w.filename + str(w.message))]
    leaked += [str(w.message) for w in raised if "is all 0" in str(w.message)]
    assert leaked == []
    assert "Warning" not in capsys.readouterr().err
    assert any("prediction of 'Lesion' (label 2) is empty" in note for note in summary.notes)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("4=x", "'4=x' is not REF=ANALYSIS"),
        ("4", "'4' is not REF=ANALYSIS"),
        ("4=1,4=2", "reference value 4 is mapped twice"),
        (",", "give at least one REF=ANALYSIS pair"),
    ],
)
def test_bad_label_maps_are_refused_naming_the_item(text, message):
    with pytest.raises(EvaluationRefused, match=message):
        parse_label_map(text)


def test_label_map_on_the_command_line_is_checked(capsys, phantom_numbered):
    dataset = ["--dataset", str(phantom_numbered)]
    assert main(["evaluate", "threshold.segment", *dataset, "--label-map", "4"]) == 2
    assert "--label-map '4': '4' is not REF=ANALYSIS" in capsys.readouterr().err
    classify = "monai_classification.liver_lesion"
    assert main(["evaluate", classify, *dataset, "--label-map", "4=1"]) == 2
    assert "--label-map applies to segmentation" in capsys.readouterr().err
