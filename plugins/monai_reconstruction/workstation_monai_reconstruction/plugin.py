"""The plugin's declaration: what the workstation lists, with no model code imported.

The analysis runs `workstation_monai_reconstruction.restore:run`, which imports torch and MONAI
only when the user runs it.
"""

from __future__ import annotations

from workstation.plugins.api import AnalysisSpec, InputKind, Parameter, hookimpl
from workstation_monai_reconstruction import __version__
from workstation_monai_reconstruction.config import ANALYSIS_ID, DEMO_WEIGHTS

WORKSTATION_PLUGIN_API = "1.2"

PARAMETERS = (
    Parameter(
        "mode",
        "choice",
        "auto",
        choices=("auto", "ct_denoise", "mr_kspace"),
        help="auto follows the series' modality: CT is denoised, MR is reconstructed from "
        "its undersampled k-space.",
    ),
    Parameter(
        "simulate",
        "bool",
        False,
        help="Degrade the (clean) series first, restore the degraded copy and report PSNR and "
        "SSIM against the original: how to evaluate the restoration on your own data.",
        label="Simulate degradation (evaluate)",
    ),
    Parameter(
        "noise_hu",
        "float",
        40.0,
        min=0.0,
        max=300.0,
        help="CT with simulate: standard deviation of the low-dose noise added, in HU.",
        label="Simulated noise (HU)",
    ),
    Parameter(
        "acceleration",
        "int",
        4,
        min=2,
        max=8,
        help="MR with simulate: undersampling factor of the k-space columns. Without simulate "
        "an MR series is refined as the zero-filled image it is assumed to be.",
    ),
    Parameter(
        "center_fraction",
        "float",
        0.08,
        min=0.01,
        max=0.5,
        help="MR with simulate: fraction of central (low-frequency) k-space columns always kept.",
    ),
    Parameter(
        "mask",
        "choice",
        "equispaced",
        choices=("equispaced", "random"),
        help="MR with simulate: k-space sampling pattern "
        "(MONAI EquispacedKspaceMaskd or RandomKspaceMaskd).",
        label="k-space mask",
    ),
    Parameter(
        "precision",
        "choice",
        "auto",
        choices=("auto", "fp32", "fp16", "bf16"),
        help="Arithmetic precision: auto is half precision on a CUDA GPU and fp32 on the CPU.",
    ),
)


@hookimpl
def workstation_analyses() -> list[AnalysisSpec]:
    return [
        AnalysisSpec(
            id=ANALYSIS_ID,
            title="Reconstruction: low-dose CT denoising, accelerated MR (MONAI)",
            version=__version__,
            entry="workstation_monai_reconstruction.restore:run",
            description=(
                "Restores a degraded acquisition slice by slice with a residual MONAI UNet: "
                "denoises low-dose CT, or reconstructs MR from undersampled k-space (zero-filled "
                "image refined, then made consistent with the sampled k-space). Returns the "
                "restored series on the source grid, a difference map and, with 'simulate', "
                "PSNR and SSIM against the original. The shipped demo weights were trained on "
                "synthetic phantoms only. Weights: a checkpoint holding both networks (a MONAI "
                "bundle folder is refused: its network has no way back to HU or MR signal)."
            ),
            inputs=(InputKind.IMAGE_SERIES,),
            modalities=("CT", "MR"),
            parameters=PARAMETERS,
            returns=("derived_volume", "heat_map", "measurements"),
            device="prefers_gpu",
            weights=f"workstation_monai_reconstruction:{DEMO_WEIGHTS}",
            timeout=1800.0,
        )
    ]
