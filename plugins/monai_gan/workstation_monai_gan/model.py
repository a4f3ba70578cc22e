"""The networks (MONAI's `Generator` and `Discriminator`) and the model file format.

A model file (``model.pt``) holds the generator's weights and a `config` saying what it makes:
image size, modality, value range and pixel spacing of its training data, so generated series
look like that data. It is read with ``torch.load(weights_only=True)`` (no code runs).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

LATENT_SIZE = 64
IMAGE_SIZE = 64
FORMAT = "workstation-monai-gan/1"


class ModelFileError(ValueError):
    """A model file cannot be used; the message names the file."""


def build_generator() -> torch.nn.Module:
    """latent [B, 64] -> image [B, 1, 64, 64] in [-1, 1] (tanh).

    Built from MONAI blocks: a linear layer to 128x8x8, then three bilinear 2x up-samplings each
    followed by a 3x3 convolution, batch norm and leaky ReLU (MONAI's `Generator` up-samples with
    stride-2 transposed convolutions, whose checkerboard the discriminator spots at once).
    """
    import torch
    from monai.networks.blocks import Convolution, UpSample

    widths = (96, 48, 24, 12)
    layers: list[torch.nn.Module] = [
        torch.nn.Linear(LATENT_SIZE, widths[0] * 8 * 8),
        torch.nn.Unflatten(1, (widths[0], 8, 8)),
        torch.nn.BatchNorm2d(widths[0]),
        torch.nn.LeakyReLU(0.2),
    ]
    for c_in, c_out in itertools.pairwise(widths):
        layers += [
            UpSample(
                2,
                scale_factor=2,
                mode="nontrainable",
                pre_conv=None,
                interp_mode="bilinear",
                align_corners=False,
            ),
            Convolution(
                2,
                c_in,
                c_out,
                kernel_size=3,
                act=("leakyrelu", {"negative_slope": 0.2}),
                norm="BATCH",
            ),
        ]
    layers += [Convolution(2, widths[-1], 1, kernel_size=3, conv_only=True), torch.nn.Tanh()]
    return torch.nn.Sequential(*layers)


def build_discriminator() -> torch.nn.Module:
    """image [B, 1, 64, 64] -> one logit per image (no final sigmoid: BCE-with-logits loss)."""
    from monai.networks.nets import Discriminator

    return Discriminator(
        in_shape=(1, IMAGE_SIZE, IMAGE_SIZE),
        channels=(16, 32, 64, 128),
        strides=(2, 2, 2, 2),
        num_res_units=0,
        act="LEAKYRELU",
        norm=None,
        dropout=0.25,
        last_act=None,
    )


def save_model(path: Path, generator: torch.nn.Module, config: dict[str, Any]) -> None:
    """Write the generator and its config (atomically, through the host's writer)."""
    import torch

    from workstation.plugins.training import atomic_write

    payload = {
        "format": FORMAT,
        "config": config,
        "generator": {k: v.detach().cpu() for k, v in generator.state_dict().items()},
    }
    atomic_write(Path(path), lambda handle: torch.save(payload, handle))


def load_model(path: str | Path, device: str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """The generator (eval mode, on `device`) and its config from a model file, a model folder
    (its model.pt) or a training checkpoint."""
    import torch

    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ModelFileError(f"{path}: not a readable model file ({error})") from None
    if not isinstance(payload, dict) or "generator" not in payload or "config" not in payload:
        raise ModelFileError(f"{path}: not a workstation-monai-gan model (no generator/config)")
    generator = build_generator()
    try:
        generator.load_state_dict(payload["generator"], strict=True)
    except RuntimeError as error:
        raise ModelFileError(f"{path}: weights do not fit the generator: {error}") from None
    return generator.to(device).eval(), dict(payload["config"])
