"""Facts the plugin declaration, the analysis and the training command share.

Plain constants only, so the declaration reads them without importing torch.
"""

from __future__ import annotations

from typing import Any

from workstation.models import CONFIG_KEY as MODEL_CONFIG_KEY

ANALYSIS_ID = "monai_reconstruction.restore"
DEMO_WEIGHTS = "data/model.pt"
MODEL_CARD = "data/MODEL_CARD.md"
CONFIG_KEY = MODEL_CONFIG_KEY
"""Checkpoint entry holding the model configuration (the host's convention, weights-only)."""

MODES = ("ct_denoise", "mr_kspace")
"""The two restorations; each has its own network inside one checkpoint (keys `<mode>.*`)."""

CT_OFFSET_HU = 1000.0
CT_SCALE_HU = 1000.0
"""CT enters the network as (HU + 1000) / 1000: air 0, water 1."""

NETWORK: dict[str, Any] = {
    "name": "UNet",
    "spatial_dims": 2,
    "in_channels": 1,
    "out_channels": 1,
    "channels": [16, 32, 64, 128],
    "strides": [2, 2, 2],
    "num_res_units": 0,
}
"""MONAI network arguments, the same for both modes (slice by slice, 2D). Three poolings give
the receptive field that MR aliasing (copies shifted by a quarter of the slice) needs."""

DIVISOR = 8
"""Slice sizes the network takes: multiples of 2 ** len(strides)."""

DEMO_DESCRIPTION = "DEMO WEIGHTS: trained only on synthetic phantoms; not for clinical use"


def default_model_config() -> dict[str, Any]:
    """What a checkpoint without its own configuration is assumed to hold."""
    return {"networks": {mode: dict(NETWORK) for mode in MODES}, "demo": False}
