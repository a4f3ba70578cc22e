"""The plugin's declaration: what the workstation lists, with no model code imported.

The analysis runs `workstation_monai_classification.inference:run`, which imports torch and
MONAI only when the user runs it.
"""

from __future__ import annotations

from workstation.plugins.api import AnalysisSpec, InputKind, Parameter, hookimpl
from workstation_monai_classification import __version__
from workstation_monai_classification.config import ANALYSIS_ID, DEMO_WEIGHTS

WORKSTATION_PLUGIN_API = "1.2"

PARAMETERS = (
    Parameter(
        "explanation",
        "choice",
        "gradcam",
        choices=("gradcam", "occlusion", "none"),
        help="Explanation map returned with the result: Grad-CAM (fast, coarse), occlusion "
        "sensitivity (how much the lesion probability drops when each patch is hidden; slower, "
        "finer) or none.",
    ),
    Parameter(
        "occlusion_patch_mm",
        "float",
        12.0,
        min=4.0,
        max=64.0,
        help="Occlusion sensitivity: edge of the square patch hidden at each position, in mm.",
        label="Occlusion patch (mm)",
    ),
    Parameter(
        "batch_size",
        "int",
        16,
        min=1,
        max=512,
        help="Slices classified at once; larger is faster on a GPU and uses more memory.",
        label="Slices per batch",
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
            title="Liver lesion present / absent (MONAI DenseNet, with explanation map)",
            version=__version__,
            entry="workstation_monai_classification.inference:run",
            description=(
                "Classifies a CT series as showing a focal hypodense liver lesion or not: a small "
                "2-D DenseNet reads every axial slice (resampled to 2 mm pixels, 3 mm apart) and "
                "the series probability is the highest slice probability. Returns the class "
                "probabilities and, as their explanation, a Grad-CAM or occlusion-sensitivity "
                "heat map on the series' own grid. The shipped demo weights were trained on "
                "synthetic phantoms only. Weights: a checkpoint for this network or a MONAI "
                "bundle folder, run with the bundle's own preprocessing."
            ),
            inputs=(InputKind.IMAGE_SERIES,),
            modalities=("CT",),
            parameters=PARAMETERS,
            returns=("classification",),
            device="prefers_gpu",
            weights=f"workstation_monai_classification:{DEMO_WEIGHTS}",
            timeout=1800.0,
        )
    ]
