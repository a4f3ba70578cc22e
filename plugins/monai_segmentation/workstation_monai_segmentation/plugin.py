"""The plugin's declaration: what the workstation lists, with no model code imported.

The analysis runs `workstation_monai_segmentation.inference:run`, which imports torch and MONAI
only when the user runs it.
"""

from __future__ import annotations

from workstation.plugins.api import AnalysisSpec, InputKind, Parameter, hookimpl
from workstation_monai_segmentation import __version__
from workstation_monai_segmentation.config import ANALYSIS_ID, DEMO_WEIGHTS

WORKSTATION_PLUGIN_API = "1.2"

PARAMETERS = (
    Parameter(
        "roi_size",
        "int",
        64,
        min=16,
        max=256,
        help="Edge of the cubic sliding window in voxels of the 2 mm training grid (a MONAI "
        "bundle's own inferer settings replace the window, overlap and batch).",
        label="Window size",
    ),
    Parameter(
        "overlap",
        "float",
        0.25,
        min=0.0,
        max=0.9,
        help="Fraction by which neighbouring windows overlap; more overlap is smoother and slower.",
    ),
    Parameter(
        "sw_batch_size",
        "int",
        2,
        min=1,
        max=64,
        help="Windows run at once; larger is faster on a GPU and uses more memory "
        "(halved automatically when the GPU runs out of memory).",
        label="Windows per batch",
    ),
    Parameter(
        "blend_mode",
        "choice",
        "gaussian",
        choices=("gaussian", "constant"),
        help="How overlapping windows are blended: Gaussian weights favour window centres.",
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
            title="CT organ and lesion segmentation (MONAI UNet)",
            version=__version__,
            entry="workstation_monai_segmentation.inference:run",
            description=(
                "Segments an organ (unenhanced or enhanced) and hypodense lesions in a CT series "
                "with a 3D UNet and a sliding window; returns the label map on the series' grid "
                "and the volume of each label in mL. The shipped demo weights were trained on "
                "synthetic phantoms only. Weights: a checkpoint for this network or a MONAI "
                "bundle folder, "
                "run with the bundle's own preprocessing, inferer and postprocessing."
            ),
            inputs=(InputKind.IMAGE_SERIES,),
            modalities=("CT",),
            parameters=PARAMETERS,
            returns=("label_map", "measurements"),
            device="prefers_gpu",
            weights=f"workstation_monai_segmentation:{DEMO_WEIGHTS}",
            timeout=1800.0,
        )
    ]
