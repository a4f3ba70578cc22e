"""Facts the training command and the inference share: classes, network grid, window, network.

Plain constants only, so the plugin declaration can read them without importing torch. A
checkpoint written by `train` stores these values; a user's checkpoint without them is assumed
to follow the defaults below.
"""

from __future__ import annotations

from typing import Any

ANALYSIS_ID = "monai_classification.liver_lesion"
DEMO_WEIGHTS = "data/model.pt"
MODEL_CARD = "data/MODEL_CARD.md"

CLASS_NAMES: tuple[str, str] = ("no liver lesion", "liver lesion")
"""Output classes in network order; index 1 is the finding the explanation maps look for."""

NETWORK_SPACING: tuple[float, float, float] = (2.0, 2.0, 3.0)
"""Voxel size (mm, x y z) of the axial grid the network reads slice by slice (see
`preprocessing.network_grid`): in-plane pixels of 2 mm, a slice every 3 mm."""

INTENSITY_WINDOW: tuple[float, float] = (-160.0, 240.0)
"""HU range mapped to [0, 1] (clipped): the soft-tissue window (level 40, width 400)."""

NETWORK: dict[str, Any] = {
    "name": "DenseNet",
    "spatial_dims": 2,
    "in_channels": 1,
    "out_channels": 2,
    "init_features": 16,
    "growth_rate": 8,
    "block_config": [4, 6],
    "bn_size": 2,
    "pool": "max",
}
"""MONAI DenseNet arguments (see `network.build_network`): a small 2-D DenseNet (about 21 000
weights) applied to every axial slice; DenseNet121 would be about 350 times larger and far too
slow to train on a CPU for demo weights. ``"pool": "max"`` swaps the head's global average
pooling for global max pooling: a small lesion is a local finding, and averaging its evidence
over a whole slice of normal tissue drowns it."""

GRADCAM_LAYER = "class_layers.relu"
"""Layer whose activations and gradients Grad-CAM combines (the last feature map)."""

DEMO_DESCRIPTION = "DEMO WEIGHTS: trained only on synthetic CT phantoms; not for clinical use"


def default_model_config() -> dict[str, Any]:
    """What a checkpoint without its own configuration is assumed to need."""
    return {
        "network": dict(NETWORK),
        "spacing": list(NETWORK_SPACING),
        "window": list(INTENSITY_WINDOW),
        "classes": list(CLASS_NAMES),
        "gradcam_layer": GRADCAM_LAYER,
        "demo": False,
    }
