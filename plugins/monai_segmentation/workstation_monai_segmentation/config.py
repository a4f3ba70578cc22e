"""Facts the training command and the inference share: labels, training grid, window, network.

Plain constants only, so the plugin declaration can read them without importing torch. A
checkpoint written by `train` stores these values; a user's checkpoint without them is assumed to
follow the defaults below.
"""

from __future__ import annotations

from typing import Any

from workstation.plugins.api import Label

ANALYSIS_ID = "monai_segmentation.ct"
DEMO_WEIGHTS = "data/model.pt"
MODEL_CARD = "data/MODEL_CARD.md"

LABELS: tuple[Label, ...] = (
    Label(1, "Organ", (221, 130, 101), ("SCT", "10200004", "Liver")),
    Label(2, "Lesion", (255, 255, 0), ("SCT", "52988006", "Lesion")),
)
"""Label table of the demo model: an organ (unenhanced or enhanced) and hypodense lesions in it."""

AXCODES = "RAS"
"""Canonical orientation the network sees (MONAI axis codes of the (i, j, k) array)."""

TRAINING_SPACING: tuple[float, float, float] = (2.0, 2.0, 2.0)
"""Voxel size (mm) along the canonical (i, j, k) axes that the network was trained on."""

INTENSITY_WINDOW: tuple[float, float] = (-200.0, 300.0)
"""HU range mapped to [0, 1] (clipped) before the network."""

NETWORK: dict[str, Any] = {
    "name": "UNet",
    "spatial_dims": 3,
    "in_channels": 1,
    "out_channels": 3,
    "channels": [16, 32, 64, 128],
    "strides": [2, 2, 2],
    "num_res_units": 1,
    "norm": "batch",
}
"""MONAI network arguments (see `network.build_network`). Batch norm (running statistics at
inference) keeps the output independent of the sliding-window size the user picks; instance norm
made it depend on how much air the window held."""

DEMO_DESCRIPTION = "DEMO WEIGHTS: trained only on synthetic CT phantoms; not for clinical use"


def default_model_config() -> dict[str, Any]:
    """What a checkpoint without its own configuration is assumed to need."""
    return {
        "network": dict(NETWORK),
        "spacing": list(TRAINING_SPACING),
        "window": list(INTENSITY_WINDOW),
        "axcodes": AXCODES,
        "labels": [
            {
                "value": label.value,
                "name": label.name,
                "color": list(label.color),
                "code": list(label.code) if label.code else None,
            }
            for label in LABELS
        ],
        "demo": False,
    }
