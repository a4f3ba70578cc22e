"""Reconstruction scoring: PSNR and SSIM of the restored volume and of its input, against a
reference image, and the gain between them.

The pairing a data set gives: image = the degraded acquisition (low-dose CT, undersampled MR),
label = the clean reference of the same anatomy on the same grid. The input scored is the image
as given, unless the analysis returns its own degraded copy as a derived volume named
"degraded" (the reconstruction plugin with `simulate=true` degrades the image itself and
restores that copy): then that copy is the input, and the reference should be the clean image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from workstation.core.results import DerivedVolume
from workstation.core.volume import Volume
from workstation.evaluation.common import stats
from workstation.evaluation.dataset import Case, DatasetProblem, read_volume
from workstation.evaluation.quiet import library_warnings

DEGRADED = "degraded"  # the name of the derived volume an analysis restored from, if not the image
AS_GIVEN, SIMULATED = "image", "degraded copy made by the analysis"
FIGURES = ("psnr_db", "ssim", "psnr_input", "ssim_input", "psnr_gain_db", "ssim_gain")


class ReconstructionScorer:
    """Per case and summarised: psnr_db/ssim (restored), psnr_input/ssim_input (what was
    restored), psnr_gain_db/ssim_gain (restored minus input)."""

    def __init__(self) -> None:
        self.case_ids: list[str] = []
        self.values: dict[str, list[float]] = {name: [] for name in FIGURES}
        self.inputs: dict[str, int] = {}

    def check_reference(self, case: Case) -> None:
        if isinstance(case.label, int):
            raise DatasetProblem(
                f"{case.describe()}: label is the class {case.label}; reconstruction needs a "
                "reference image file"
            )

    def score(self, case: Case, image: Volume, results, row, registry) -> list[str]:
        from workstation.evaluation.metrics import reconstruction_scores

        derived = [r for r in results if isinstance(r, DerivedVolume)]
        restored = next((r for r in derived if r.name != DEGRADED), None)
        if restored is None:
            raise DatasetProblem(f"{case.describe()}: the analysis returned no restored volume")
        degraded = next((r for r in derived if r.name == DEGRADED), None)
        output = restored.volume
        given = degraded.volume if degraded is not None else image
        reference = read_volume(case.label, case, "reference", registry)
        notes = []
        if not reference.geometry.is_close(output.geometry, tol_mm=1e-3):
            reference = reference.resample_to(output, order=1)
            notes.append(
                f"{case.describe()}: reference {case.label} is on a different grid than the "
                "output; resampled onto it (linear)"
            )
        if not given.geometry.is_close(output.geometry, tol_mm=1e-3):
            given = given.resample_to(output, order=1)
        ref = np.asarray(reference.array, np.float32)
        with library_warnings() as raised:
            after = reconstruction_scores(output.array, ref)
            before = reconstruction_scores(given.array, ref)
        notes += [f"{case.describe()}: {text}" for text in raised]
        notes += _pairing_notes(case, image, given, ref, simulated=degraded is not None)
        figures = {
            "psnr_db": after["psnr_db"],
            "ssim": after["ssim"],
            "psnr_input": before["psnr_db"],
            "ssim_input": before["ssim"],
            "psnr_gain_db": after["psnr_db"] - before["psnr_db"],
            "ssim_gain": after["ssim"] - before["ssim"],
        }
        row.update(figures)
        row["input_scored"] = SIMULATED if degraded is not None else AS_GIVEN
        self.inputs[row["input_scored"]] = self.inputs.get(row["input_scored"], 0) + 1
        self.case_ids.append(case.case_id)
        for name, value in figures.items():
            self.values[name].append(value)
        return notes

    def finish(self, rows: list[dict[str, Any]]) -> list[str]:
        return []

    def summary(self) -> dict[str, Any]:
        return {name: stats(values) for name, values in self.values.items()}

    def extras(self) -> dict[str, Any]:
        return {
            "input_scored": dict(self.inputs),
            "pairing": "image = the degraded acquisition, label = its clean reference; "
            "psnr_input/ssim_input score the input against the reference, psnr_db/ssim the "
            "restoration, *_gain the difference (restored minus input)",
        }

    def plots(self, out: Path, title: str) -> list[Path]:
        from workstation.evaluation.plots import reconstruction_plot

        if not self.case_ids:
            return []
        path = out / "psnr_ssim.png"
        v = self.values
        inputs = (v["psnr_input"], v["ssim_input"])
        return [reconstruction_plot(self.case_ids, v["psnr_db"], v["ssim"], path, title, *inputs)]


def _pairing_notes(
    case: Case, image: Volume, given: Volume, reference: np.ndarray, simulated: bool
) -> list[str]:
    """Data sets paired the wrong way score something else than intended; say so."""
    where = case.describe()
    if not simulated and np.array_equal(np.asarray(given.array, np.float32), reference):
        return [
            f"{where}: the image equals the reference, so there was nothing to restore and the "
            "figures only measure how much the analysis changed a clean image; give the degraded "
            "acquisition as image and the clean one as label, or use --param simulate=true"
        ]
    clean_image = np.asarray(image.array, np.float32)
    if (
        simulated
        and clean_image.shape == reference.shape
        and not np.allclose(clean_image, reference, atol=1e-3)
    ):
        return [
            f"{where}: with simulate the analysis degrades the image itself and restores that "
            "copy, but this reference differs from the image; give the clean image as both "
            "image and label"
        ]
    return []
