"""What the workstation lists: the analysis, its parameters and what it returns.

This module is imported every time plugins are listed, so it holds declarations only. The work
is in `workstation_threshold.segment`, named by `entry` and imported when the analysis runs.
"""

from __future__ import annotations

from workstation.plugins.api import AnalysisSpec, InputKind, Parameter, hookimpl
from workstation_threshold import __version__

WORKSTATION_PLUGIN_API = "1.0"

PARAMETERS = (
    Parameter(
        name="lower",
        type="float",
        default=300.0,
        min=-2000,
        max=5000,
        label="Lower (HU)",
        help="Lowest value kept, in HU (inclusive).",
    ),
    Parameter(
        name="upper",
        type="float",
        default=3071.0,
        min=-2000,
        max=5000,
        label="Upper (HU)",
        help="Highest value kept, in HU (inclusive).",
    ),
    Parameter(
        name="min_volume_ml",
        type="float",
        default=0.1,
        min=0.0,
        max=10000.0,
        label="Minimum size (mL)",
        help="Connected components smaller than this are dropped.",
    ),
    Parameter(
        name="max_components",
        type="int",
        default=50,
        min=1,
        max=1000,
        help="Keep at most this many components, the largest first.",
    ),
    Parameter(
        name="connectivity",
        type="choice",
        default="faces",
        choices=("faces", "edges", "corners"),
        help="Which neighbours join voxels into one component: 6 (faces), "
        "18 (faces and edges) or 26 (faces, edges and corners).",
    ),
)


@hookimpl
def workstation_analyses() -> list[AnalysisSpec]:
    return [
        AnalysisSpec(
            id="threshold.segment",
            title="HU threshold segmentation",
            version=__version__,
            entry="workstation_threshold.segment:run",
            description=(
                "Keeps the voxels between two HU values, splits them into connected components, "
                "drops the small ones and returns a label map (one label per component, largest "
                "first) and a table of component volumes in mL."
            ),
            inputs=(InputKind.IMAGE_SERIES,),
            parameters=PARAMETERS,
            returns=("label_map", "measurements"),
            device="cpu",
            timeout=300.0,
        )
    ]
