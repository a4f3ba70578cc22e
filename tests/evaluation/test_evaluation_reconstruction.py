"""`workstation evaluate` on a reconstruction: PSNR/SSIM of the output and of its input against
the reference, the gain, and which input was scored (the image, or the analysis's own
degraded copy with simulate)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from workstation.core.volume import Volume
from workstation.evaluation import evaluate

# Halves every voxel's distance to the nearest multiple of 100 (the clean values here), so the
# error, and the MSE, shrink by 2 and 4: +6.02 dB. With simulate it first adds +-10 itself.
FAKE_RESTORER = """
import numpy as np
from workstation.plugins.api import AnalysisSpec, DerivedVolume, Parameter, hookimpl

WORKSTATION_PLUGIN_API = "1.0"


@hookimpl
def workstation_analyses():
    return [
        AnalysisSpec(
            id="fake.restore",
            title="fake restorer",
            version="1.0",
            entry=f"{__name__}:run",
            returns=["derived_volume"],
            device="cpu",
            parameters=(
                Parameter(name="simulate", type="bool", default=False, help="degrade first"),
            ),
        )
    ]


def run(ctx):
    given = ctx.volume.array.astype(np.float32)
    results = []
    if ctx.params["simulate"]:
        given = given + np.where(np.indices(given.shape).sum(axis=0) % 2 == 0, 10.0, -10.0)
        results.append(DerivedVolume(name="degraded", volume=ctx.volume.with_array(given)))
    clean = np.round(given / 100.0) * 100.0
    restored = given - 0.5 * (given - clean)
    results.insert(0, DerivedVolume(name="restored", volume=ctx.volume.with_array(restored)))
    return results
"""

SHAPE = (12, 16, 16)
INPUT_PSNR = 10 * math.log10(100.0**2 / 10.0**2)  # range 100, error +-10 everywhere: 20 dB
OUTPUT_PSNR = 10 * math.log10(100.0**2 / 5.0**2)  # error +-5: 26.02 dB


def clean_image() -> np.ndarray:
    clean = np.zeros(SHAPE, np.float32)
    clean[3:9, 4:12, 4:12] = 100.0
    return clean


def noisy_image() -> np.ndarray:
    sign = np.where(np.indices(SHAPE).sum(axis=0) % 2 == 0, 10.0, -10.0)
    return (clean_image() + sign).astype(np.float32)


def write_case(root: Path, name: str, array: np.ndarray) -> str:
    root.mkdir(parents=True, exist_ok=True)
    nib.save(Volume(array, spacing=(1.0, 1.0, 1.0)).to_nifti(), str(root / f"{name}.nii.gz"))
    return f"{name}.nii.gz"


def datalist(root: Path, pairs: list[tuple[str, str]]) -> Path:
    path = root / "datalist.json"
    path.write_text(json.dumps({"testing": [{"image": i, "label": r} for i, r in pairs]}))
    return path


@pytest.fixture
def restorer(make_plugin):
    return make_plugin(FAKE_RESTORER)


def test_input_output_and_gain_against_the_reference(tmp_path, restorer):
    root = tmp_path / "data"
    noisy, clean = (
        write_case(root, "noisy", noisy_image()),
        write_case(root, "clean", clean_image()),
    )
    out = tmp_path / "eval"
    summary = evaluate(
        "fake.restore", datalist(root, [(noisy, clean)]), out, registry=restorer.registry
    )
    assert summary.ok, summary.failed
    row = summary.rows[0]
    assert row["psnr_input"] == pytest.approx(INPUT_PSNR, abs=1e-3)
    assert row["psnr_db"] == pytest.approx(OUTPUT_PSNR, abs=1e-3)
    assert row["psnr_gain_db"] == pytest.approx(OUTPUT_PSNR - INPUT_PSNR, abs=1e-3)
    assert row["ssim_input"] < row["ssim"]
    assert row["ssim_gain"] == pytest.approx(row["ssim"] - row["ssim_input"])
    assert row["input_scored"] == "image"
    with (out / "cases.csv").open(newline="") as handle:
        header = csv.DictReader(handle).fieldnames
    for name in ("psnr_db", "ssim", "psnr_input", "ssim_input", "psnr_gain_db", "ssim_gain"):
        assert name in header
    written = json.loads((out / "summary.json").read_text())
    gain = written["metrics"]["psnr_gain_db"]
    assert gain["mean"] == pytest.approx(6.0206, abs=1e-3) and gain["median"] == gain["mean"]
    assert written["metrics"]["psnr_input"]["mean"] == pytest.approx(INPUT_PSNR, abs=1e-3)
    assert written["scoring"]["input_scored"] == {"image": 1}
    assert summary.notes == []
    assert (out / "psnr_ssim.png").stat().st_size > 0


def test_simulate_scores_the_analysis_degraded_copy_as_the_input(tmp_path, restorer):
    root = tmp_path / "data"
    clean = write_case(root, "clean", clean_image())
    summary = evaluate(
        "fake.restore",
        datalist(root, [(clean, clean)]),
        tmp_path / "eval",
        params={"simulate": "true"},
        registry=restorer.registry,
    )
    row = summary.rows[0]
    assert row["input_scored"] == "degraded copy made by the analysis"
    assert row["psnr_input"] == pytest.approx(INPUT_PSNR, abs=1e-3)
    assert row["psnr_gain_db"] == pytest.approx(OUTPUT_PSNR - INPUT_PSNR, abs=1e-3)
    assert summary.notes == []


def test_image_equal_to_its_reference_is_said(tmp_path, restorer):
    root = tmp_path / "data"
    clean = write_case(root, "clean", clean_image() + 7.0)  # restored towards 0/100: changed
    summary = evaluate(
        "fake.restore",
        datalist(root, [(clean, clean)]),
        tmp_path / "eval",
        registry=restorer.registry,
    )
    assert len(summary.notes) == 1
    assert "the image equals the reference, so there was nothing to restore" in summary.notes[0]
    assert "simulate=true" in summary.notes[0]
    assert math.isnan(summary.rows[0]["psnr_input"])
    assert summary.rows[0]["notes"] == summary.notes[0]
