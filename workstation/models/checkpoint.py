"""Loading weights into a network from a checkpoint file.

Accepted: a plain state_dict, a dict holding one under "state_dict", "model", "network" or
"net" (MONAI/ignite CheckpointSaver files), or a TorchScript file. Files are read with
``weights_only=True`` (tensors only, no code runs); a file that needs full unpickling is loaded
only when it is trusted. Mismatched keys or shapes are reported naming the layer.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workstation.models.errors import CheckpointError
from workstation.models.precision import as_device

STATE_DICT_KEYS = ("state_dict", "model", "network", "net", "model_state_dict")
# Where a plugin's training command stores how to rebuild its network (architecture, spacing,
# labels, "demo": True for shipped demo weights) beside the state_dict in the same file.
CONFIG_KEY = "workstation_config"


def read_checkpoint_config(path: Path, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration a checkpoint carries under `CONFIG_KEY`, over `defaults`; the defaults
    when it has none or cannot be read weights-only (loading its weights reports that)."""
    import torch

    config = dict(defaults)
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return config
    stored = content.get(CONFIG_KEY) if isinstance(content, dict) else None
    if isinstance(stored, dict):
        config.update(stored)
    return config


def is_demo_weights(path: Path, config: Mapping[str, Any], shipped: Path) -> bool:
    """Results from these weights must be labelled demo: the checkpoint says so, or it is the
    file the plugin ships."""
    if config.get("demo"):
        return True
    try:
        return Path(path).samefile(shipped)
    except OSError:
        return False


def is_torchscript(path: Path) -> bool:
    """TorchScript archives are zip files with a `constants.pkl` or `code/` entry."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(
                name.endswith("/constants.pkl") or "/code/" in name for name in archive.namelist()
            )
    except (zipfile.BadZipFile, OSError):
        return False


def _read(path: Path, allow_pickle: bool, store_dir: str | Path | None = None) -> Any:
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "global" not in str(error).lower():  # corrupt or not a pickle at all
            raise CheckpointError(f"{path}: not a readable PyTorch checkpoint") from None
        if not allow_pickle:
            from workstation.models.trust import trust_command

            found = _unsupported_global(error)
            what = (
                f"a whole pickled network ({found.rsplit('.', 1)[-1]})"
                if found.startswith("torch.nn.modules.")
                else f"pickled Python objects ({found})"
            )
            raise CheckpointError(
                f"{path}: holds {what}, not just weights. Save a state_dict "
                f"(torch.save(model.state_dict(), path)) or TorchScript "
                f"(torch.jit.save(torch.jit.script(model), path)) instead: those load without "
                f"trust. Unpickling this file can run code from it; if you trust its source, "
                f"trust it with: {trust_command(path.resolve(), store_dir)}"
            ) from None
    except (RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint: {error}") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise CheckpointError(f"{path}: cannot be loaded: {error}") from None


def _unsupported_global(error: Exception) -> str:
    """The dotted name torch's weights-only unpickler refused, e.g. "numpy.dtype"."""
    match = re.search(r"GLOBAL ([\w.]+)", str(error))
    return match.group(1) if match else "an object torch does not load weights-only"


def extract_state_dict(content: Any, path: Path) -> dict[str, Any]:
    """The tensor mapping inside a checkpoint, without a DataParallel 'module.' prefix."""
    import torch

    state = content
    if isinstance(state, Mapping) and not all(isinstance(v, torch.Tensor) for v in state.values()):
        for key in STATE_DICT_KEYS:
            if isinstance(state.get(key), Mapping):
                state = state[key]
                break
        else:
            raise CheckpointError(
                f"{path}: no state_dict found; top-level keys are {sorted(map(str, state))[:10]}"
            )
    if isinstance(state, torch.nn.Module):
        raise CheckpointError(
            f"{path}: holds a whole pickled network ({type(state).__name__}), not weights; save "
            f"a state_dict (torch.save(model.state_dict(), path)) or TorchScript "
            f"(torch.jit.save(torch.jit.script(model), path)) instead"
        )
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: expected a state_dict, got {type(state).__name__}")
    tensors = {str(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if tensors and all(k.startswith("module.") for k in tensors):
        tensors = {k.removeprefix("module."): v for k, v in tensors.items()}
    return tensors


def check_compatible(network: Any, state: Mapping[str, Any], path: Path) -> None:
    """Raise naming the first layers whose shapes differ, or that are missing or unexpected."""
    expected = network.state_dict()
    mismatched = [
        f"{name}: checkpoint {tuple(state[name].shape)} vs network {tuple(tensor.shape)}"
        for name, tensor in expected.items()
        if name in state and tuple(state[name].shape) != tuple(tensor.shape)
    ]
    if mismatched:
        raise CheckpointError(
            f"{path}: weights do not fit the network; shape mismatch in layer "
            + "; ".join(mismatched[:5])
            + (f" (and {len(mismatched) - 5} more)" if len(mismatched) > 5 else "")
        )
    missing = [name for name in expected if name not in state]
    unexpected = [name for name in state if name not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing from the checkpoint: {', '.join(missing[:5])}")
        if unexpected:
            parts.append(f"not in the network: {', '.join(unexpected[:5])}")
        raise CheckpointError(
            f"{path}: weights do not fit the network ({len(missing)} missing, "
            f"{len(unexpected)} unexpected); " + "; ".join(parts)
        )


def load_checkpoint(
    network: Any,
    path: str | Path,
    device: Any = "cpu",
    *,
    allow_pickle: bool | None = None,
    store_dir: str | Path | None = None,
) -> Any:
    """Load weights from `path` into `network`, move it to `device` in eval mode, return it.

    With `network=None`, a TorchScript file is returned as the scripted module. `allow_pickle`:
    permit full unpickling (runs code from the file); None means "if the file is trusted" (in
    the store at `store_dir`, default store when None)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    target = as_device(device)
    if is_torchscript(path):
        try:
            scripted = torch.jit.load(str(path), map_location="cpu")
        except Exception as error:
            raise CheckpointError(f"{path}: not a loadable TorchScript file: {error}") from None
        if network is None:
            return scripted.to(target).eval()
        state = dict(scripted.state_dict())
    else:
        if network is None:
            raise CheckpointError(f"{path}: a state_dict checkpoint needs a network to load into")
        if allow_pickle is None:
            from workstation.models.trust import is_trusted

            allow_pickle = is_trusted(path, store_dir)
        state = extract_state_dict(_read(path, allow_pickle, store_dir), path)
    check_compatible(network, state, path)
    network.load_state_dict(state, strict=True)
    return network.to(target).eval()
