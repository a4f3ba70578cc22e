"""What `workstation models trust` may record: a bundle folder, or a checkpoint that really
needs trust. Refusing the rest keeps the trust list meaningful: an empty folder is no bundle,
a plain state_dict or TorchScript file is read without running anything (trust adds nothing),
and a file that cannot be read at all is no checkpoint. Nothing from the path is executed:
configs are only listed and checkpoints are read weights-only.
"""

from __future__ import annotations

import pickle
from pathlib import Path

from workstation.models.checkpoint import is_torchscript
from workstation.models.errors import BundleError, CheckpointError, ModelError

CONFIG_SUFFIXES = (".json", ".yaml", ".yml")


class NoTrustNeeded(ModelError):
    """The checkpoint loads without trust (weights only, or TorchScript)."""


def check_trustable(path: str | Path) -> str:
    """ "bundle" or "checkpoint" when `path` is something trust is meant for; otherwise raises
    `BundleError` (not a bundle), `NoTrustNeeded` or `CheckpointError` (unreadable), each
    naming the path and what it is."""
    path = Path(path).expanduser()
    if path.is_dir():
        _check_bundle(path)
        return "bundle"
    if not path.is_file():
        raise ModelError(f"{path}: no such bundle folder or checkpoint file")
    _check_checkpoint(path)
    return "checkpoint"


def _check_bundle(path: Path) -> None:
    configs = path / "configs"
    layout = "a MONAI bundle holds configs/inference.json, configs/metadata.json and models/"
    if not configs.is_dir():
        raise BundleError(f"{path}: not a MONAI bundle: there is no configs/ folder ({layout})")
    found = [p for p in configs.iterdir() if p.is_file() and p.suffix in CONFIG_SUFFIXES]
    if not found:
        raise BundleError(
            f"{path}: not a MONAI bundle: configs/ holds no .json or .yaml config ({layout})"
        )


def _check_checkpoint(path: Path) -> None:
    import torch

    if is_torchscript(path):
        raise NoTrustNeeded(
            f"{path}: is a TorchScript file, which loads without unpickling Python objects, so "
            f"it needs no trust: give it with --weights as it is"
        )
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "global" in str(error).lower():
            return  # pickled Python objects: what trust is for
        raise CheckpointError(
            f"{path}: cannot be read as a PyTorch checkpoint ({_reason(error)}), so there is "
            f"nothing to trust"
        ) from None
    except Exception as error:
        raise CheckpointError(
            f"{path}: cannot be read as a PyTorch checkpoint ({_reason(error)}), so there is "
            f"nothing to trust; it may be truncated or not a checkpoint at all"
        ) from None
    raise NoTrustNeeded(
        f"{path}: holds only weights (a plain state_dict of tensors, numbers and strings), "
        f"which load without running anything from the file, so it needs no trust: give it "
        f"with --weights as it is"
    )


def _reason(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    if not lines:
        return type(error).__name__
    first = lines[0].split(". ")[0].rstrip(".")  # torch's first sentence says what failed
    return f"{type(error).__name__}: {first[:200]}"
