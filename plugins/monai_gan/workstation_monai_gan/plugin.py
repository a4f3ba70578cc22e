"""What the workstation lists: the GAN generation analysis, trainable with `workstation train`.

Imported whenever plugins are listed, so declarations only: torch and MONAI are imported by
`generate.py` and `trainer.py` when the user generates or trains.
"""

from __future__ import annotations

from importlib.resources import files

from workstation.plugins.api import AnalysisSpec, InputKind, Parameter, hookimpl
from workstation_monai_gan import __version__

WORKSTATION_PLUGIN_API = "1.1"
DEMO_WEIGHTS = str(files("workstation_monai_gan").joinpath("weights/demo_gan.pt"))

PARAMETERS = (
    Parameter(
        name="count",
        type="int",
        default=16,
        min=1,
        max=100_000,
        label="Images",
        help="How many synthetic slices to generate (one series).",
    ),
    Parameter(
        name="seed",
        type="int",
        default=0,
        min=0,
        max=2**31 - 1,
        help="The same seed with the same model gives the same images.",
    ),
)


@hookimpl
def workstation_analyses() -> list[AnalysisSpec]:
    return [
        AnalysisSpec(
            id="gan.generate",
            title="Synthetic images (GAN)",
            version=__version__,
            entry="workstation_monai_gan.generate:run",
            train_entry="workstation_monai_gan.trainer:train",
            description=(
                "Generates new 64x64 slices of the modality the GAN was trained on, with its "
                "spacing and value range, as a series marked SYNTHETIC with a synthetic patient. "
                "Train it on your own series with `workstation train gan.generate`; the shipped "
                "demo weights were trained on CT phantoms."
            ),
            inputs=(InputKind.IMAGE_SERIES,),
            inputs_optional=True,
            parameters=PARAMETERS,
            returns=("generated_series",),
            device="prefers_gpu",
            weights="workstation_monai_gan:weights/demo_gan.pt",
            timeout=600.0,
        )
    ]
