"""The networks: a MONAI 2D UNet per mode, wrapped so that it predicts a residual."""

from __future__ import annotations

from typing import Any

import torch

from workstation_monai_reconstruction.config import MODES


class ResidualRestorer(torch.nn.Module):
    """``output = input + net(input)``: the UNet learns only what the degradation changed (the
    noise, or the aliasing), which trains faster and never loses the image it was given."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net
        convolutions = [m for m in net.modules() if isinstance(m, torch.nn.modules.conv._ConvNd)]
        if convolutions:  # start as the identity: training only learns the correction
            torch.nn.init.zeros_(convolutions[-1].weight)
            if convolutions[-1].bias is not None:
                torch.nn.init.zeros_(convolutions[-1].bias)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return image + self.net(image)


def build_network(arguments: dict[str, Any]) -> ResidualRestorer:
    from monai.networks import nets

    arguments = dict(arguments)
    name = arguments.pop("name")
    return ResidualRestorer(getattr(nets, name)(**arguments))


def build_networks(config: dict[str, Any]) -> torch.nn.ModuleDict:
    """Both modes' networks in one module, so one checkpoint file holds them (keys `<mode>.*`)."""
    return torch.nn.ModuleDict({mode: build_network(config["networks"][mode]) for mode in MODES})
