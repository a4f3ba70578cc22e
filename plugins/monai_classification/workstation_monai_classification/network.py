"""The classification network, built from the plain description a checkpoint carries."""

from __future__ import annotations

from typing import Any

import torch


def build_network(description: dict[str, Any]) -> torch.nn.Module:
    """A MONAI DenseNet (or DenseNet121) slice classifier from `description` (see
    `config.NETWORK`)."""
    from monai.networks.nets import DenseNet, DenseNet121

    args = dict(description)
    name = args.pop("name", "DenseNet")
    common = {
        "spatial_dims": int(args.get("spatial_dims", 2)),
        "in_channels": int(args.get("in_channels", 1)),
        "out_channels": int(args.get("out_channels", 2)),
    }
    if name == "DenseNet":
        network = DenseNet(
            **common,
            init_features=int(args["init_features"]),
            growth_rate=int(args["growth_rate"]),
            block_config=tuple(int(b) for b in args["block_config"]),
            bn_size=int(args.get("bn_size", 4)),
        )
    elif name == "DenseNet121":
        network = DenseNet121(**common)
    else:
        raise ValueError(
            f"unknown network {name!r}; this plugin builds 'DenseNet' or 'DenseNet121'"
        )
    pool = args.get("pool", "avg")
    if pool == "max":  # global max pooling: evidence of a small local finding is not averaged away
        dims = common["spatial_dims"]
        network.class_layers.pool = (
            torch.nn.AdaptiveMaxPool2d(1) if dims == 2 else torch.nn.AdaptiveMaxPool3d(1)
        )
    elif pool != "avg":
        raise ValueError(f"unknown pooling {pool!r}; use 'avg' or 'max'")
    return network
