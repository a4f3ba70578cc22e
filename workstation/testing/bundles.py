"""Writing a MONAI bundle folder in model-zoo layout for tests, with weights of your choosing."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def write_bundle_folder(
    folder: str | Path,
    inference: Mapping[str, Any],
    metadata: Mapping[str, Any],
    state: Mapping[str, Any] | None = None,
) -> Path:
    """`folder`/configs/inference.json and metadata.json from the two mappings, and
    `folder`/models/model.pt holding `state` (a state dict) when given; returns `folder`.
    The bundle still has to be trusted (`workstation.models.trust`) before it loads."""
    folder = Path(folder)
    (folder / "configs").mkdir(parents=True)
    (folder / "configs" / "inference.json").write_text(json.dumps(inference, indent=2))
    (folder / "configs" / "metadata.json").write_text(json.dumps(metadata, indent=2))
    if state is not None:
        import torch

        (folder / "models").mkdir()
        torch.save(dict(state), folder / "models" / "model.pt")
    return folder
