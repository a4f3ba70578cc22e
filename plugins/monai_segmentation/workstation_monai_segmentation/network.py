"""The segmentation network, built from the plain description a checkpoint carries."""

from __future__ import annotations

from typing import Any

import torch


def build_network(description: dict[str, Any]) -> torch.nn.Module:
    """A MONAI UNet or SegResNet from `description` (see `config.NETWORK`)."""
    from monai.networks.nets import SegResNet, UNet

    args = dict(description)
    name = args.pop("name", "UNet")
    if name == "UNet":
        return UNet(
            spatial_dims=int(args["spatial_dims"]),
            in_channels=int(args["in_channels"]),
            out_channels=int(args["out_channels"]),
            channels=tuple(int(c) for c in args["channels"]),
            strides=tuple(int(s) for s in args["strides"]),
            num_res_units=int(args.get("num_res_units", 1)),
            norm=str(args.get("norm", "instance")),
        )
    if name == "SegResNet":
        return SegResNet(
            spatial_dims=int(args["spatial_dims"]),
            in_channels=int(args["in_channels"]),
            out_channels=int(args["out_channels"]),
            init_filters=int(args.get("init_filters", 8)),
        )
    raise ValueError(f"unknown network {name!r}; this plugin builds 'UNet' or 'SegResNet'")
