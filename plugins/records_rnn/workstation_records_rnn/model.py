"""The network: a GRU over the binned sequence, a linear head giving a risk logit per bin.

MONAI has no recurrent layers, so this is plain torch. Imported only when the analysis runs or
trains.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from workstation_records_rnn.features import FEATURE_NAMES


class RiskGRU(nn.Module):
    def __init__(self, n_features: int = len(FEATURE_NAMES), hidden: int = 32) -> None:
        super().__init__()
        self.gru = nn.GRU(n_features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[batch, time, features] -> risk logits [batch, time]."""
        out, _ = self.gru(x)
        return self.head(out).squeeze(-1)


def save_checkpoint(path: Path, model: RiskGRU, meta: dict[str, Any]) -> None:
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hidden": model.head.in_features,
            "features": list(FEATURE_NAMES),
            "meta": meta,
        },
        path,
    )


def load_checkpoint(path: Path, device: torch.device) -> tuple[RiskGRU, dict[str, Any]]:
    """The model from a checkpoint this plugin wrote; a clear error for anything else."""
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:
        raise ValueError(f"{path}: not a records RNN checkpoint ({error})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("features") != list(FEATURE_NAMES):
        raise ValueError(f"{path}: checkpoint was made for other input features than this model's")
    model = RiskGRU(hidden=int(checkpoint["hidden"]))
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval(), dict(checkpoint.get("meta", {}))
