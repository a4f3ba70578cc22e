"""`workstation evaluate` on segmentation analyses: Dice from known labels, CSV, box plot."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from workstation.cli import main
from workstation.core.volume import Volume
from workstation.evaluation import evaluate

SHAPE = (8, 16, 16)


def write_nifti(volume: Volume, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(volume.to_nifti(), str(path))
    return path


def bright_box(x0: int) -> Volume:
    """An air image with one 4 x 4 x 4 block of 500 HU starting at x = x0."""
    array = np.full(SHAPE, -1000, np.int16)
    array[2:6, 6:10, x0 : x0 + 4] = 500
    return Volume(array, spacing=(1.0, 1.0, 1.0))


def box_label(x0: int, x1: int) -> Volume:
    array = np.zeros(SHAPE, np.uint8)
    array[2:6, 6:10, x0:x1] = 1
    return Volume(array, spacing=(1.0, 1.0, 1.0))


@pytest.fixture
def threshold_datalist(tmp_path: Path) -> Path:
    """Three cases whose Dice with a 300 HU threshold is known: 1.0, 0.75 and 2*32/(64+32)."""
    data = tmp_path / "data"
    entries = []
    for name, image_x0, (label_x0, label_x1) in (
        ("exact", 4, (4, 8)),
        ("shifted", 4, (5, 9)),  # overlap 3 of 4 columns: 2*48/128 = 0.75
        ("half", 6, (6, 8)),  # label half of the block: 2*32/(64+32)
    ):
        write_nifti(bright_box(image_x0), data / "images" / f"{name}.nii.gz")
        write_nifti(box_label(label_x0, label_x1), data / "labels" / f"{name}.nii.gz")
        entries.append({"image": f"images/{name}.nii.gz", "label": f"labels/{name}.nii.gz"})
    datalist = data / "datalist.json"
    datalist.write_text(json.dumps({"testing": entries}))
    return datalist


def read_rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as handle:
        return {row["case"]: row for row in csv.DictReader(handle)}


def test_threshold_datalist_gives_known_dice(threshold_datalist: Path, tmp_path: Path, capsys):
    out = tmp_path / "eval"
    code = main(
        [
            "evaluate",
            "threshold.segment",
            "--dataset",
            str(threshold_datalist),
            "--out",
            str(out),
            "--param",
            "lower=300",
            "--param",
            "min_volume_ml=0",
            "--binary",
        ]
    )
    assert code == 0
    rows = read_rows(out / "cases.csv")
    assert float(rows["exact"]["dice_foreground"]) == pytest.approx(1.0)
    assert float(rows["shifted"]["dice_foreground"]) == pytest.approx(0.75)
    assert float(rows["half"]["dice_foreground"]) == pytest.approx(64 / 96)
    assert float(rows["exact"]["hd95_mm_foreground"]) == pytest.approx(0.0)
    assert float(rows["shifted"]["hd95_mm_foreground"]) == pytest.approx(1.0)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["task"] == "segmentation"
    assert summary["scored"] == 3 and summary["failed"] == []
    mean = summary["metrics"]["foreground"]["dice"]["mean"]
    assert mean == pytest.approx((1.0 + 0.75 + 64 / 96) / 3)
    assert (out / "dice_boxplot.png").stat().st_size > 0
    assert "[3/3] half" in capsys.readouterr().err


def test_label_on_finer_grid_is_resampled_and_said(tmp_path: Path):
    """A label stored at 0.5 mm over the same box is put on the 1 mm image grid, with a note."""
    data = tmp_path / "data"
    write_nifti(bright_box(4), data / "images" / "fine.nii.gz")
    fine = np.zeros(tuple(2 * s for s in SHAPE), np.uint8)
    fine[4:12, 12:20, 8:16] = 1
    write_nifti(Volume(fine, spacing=(0.5, 0.5, 0.5)), data / "labels" / "fine.nii.gz")
    summary = evaluate(
        "threshold.segment",
        data,
        tmp_path / "eval",
        params={"lower": 300, "min_volume_ml": 0},
        binary=True,
    )
    assert summary.rows[0]["dice_foreground"] == pytest.approx(1.0)
    assert len(summary.notes) == 1
    assert "fine" in summary.notes[0] and "resampled onto the image grid" in summary.notes[0]


def test_segmentation_plugin_on_phantoms_writes_csv_and_box_plot(tmp_path: Path):
    phantoms = pytest.importorskip("workstation_monai_segmentation.phantoms")
    geometry = phantoms.centred_geometry((6.0, 6.0, 6.0), np.eye(3))
    data = tmp_path / "phantoms"
    for i, case in enumerate(phantoms.make_cases(seed=7, count=2, geometry=geometry)):
        write_nifti(case.image, data / "images" / f"case{i}.nii.gz")
        write_nifti(case.labels, data / "labels" / f"case{i}.nii.gz")
    out = tmp_path / "eval"
    summary = evaluate("monai_segmentation.ct", data, out, device="cpu")
    assert summary.ok, summary.failed
    with (out / "cases.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert [row["case"] for row in rows] == ["case0", "case1"]
    for column in ("dice_Organ", "hd95_mm_Organ", "dice_Lesion", "hd95_mm_Lesion", "status"):
        assert column in reader.fieldnames
    for row in rows:
        assert 0.0 <= float(row["dice_Organ"]) <= 1.0
    plot = out / "dice_boxplot.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 1000
    assert set(summary.metrics) == {"Organ", "Lesion"}
