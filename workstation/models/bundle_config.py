"""Adapting a model-zoo bundle config to this machine, as plain data before MONAI parses it.

Zoo configs are written for a training server: ``"bundle_root": "."``, ``"device":
"$torch.device('cuda:0')"``, outputs under the bundle, datasets under ``/workspace/...``,
``"num_workers": 4``. The host rewrites those entries so a bundle runs where the user is:
its own folder as bundle_root, the host's chosen device, outputs and datasets in a scratch
folder (never inside the bundle, whose content hash must not change), and a worker count the
machine can afford. Every change is recorded so it can be shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workstation.models.precision import suited_num_workers

_CUDA_LITERAL = re.compile(r"""(['"])cuda(?::\d+)?\1""")
_CUDA_PLAIN = re.compile(r"^cuda(?::\d+)?$")
_WORKSPACE = "/workspace"
REDIRECTED_DIRS = ("output_dir", "dataset_dir", "data_dir", "log_dir")


def _map_strings(value: Any, where: str, change: Callable[[str, str], str]) -> Any:
    if isinstance(value, dict):
        return {
            k: _map_strings(v, f"{where}::{k}" if where else str(k), change)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_map_strings(v, f"{where}::{i}", change) for i, v in enumerate(value)]
    if isinstance(value, str):
        return change(where, value)
    return value


def adapt_config(
    config: dict[str, Any],
    bundle_root: Path,
    device: str,
    scratch_dir: Path,
    num_workers: int | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Return (adapted copy of `config`, list of "entry: what changed" notes)."""
    notes: list[str] = []
    scratch = Path(scratch_dir)
    quoted_device = repr(str(device))

    def change(where: str, text: str) -> str:
        new = text
        if text.startswith("$"):
            new = _CUDA_LITERAL.sub(quoted_device, new)
            new = new.replace(f"'{_WORKSPACE}", f"'{scratch}{_WORKSPACE}")
            new = new.replace(f'"{_WORKSPACE}', f'"{scratch}{_WORKSPACE}')
        elif _CUDA_PLAIN.match(text):
            new = str(device)
        elif text == _WORKSPACE or text.startswith(_WORKSPACE + "/"):
            new = f"{scratch}{text}"
        if new != text:
            notes.append(f"{where}: {text!r} -> {new!r}")
        return new

    adapted = _map_strings(config, "", change)
    adapted = _limit_workers(adapted, "", notes, num_workers)
    adapted["bundle_root"] = str(bundle_root)
    notes.append(f"bundle_root: {config.get('bundle_root', '(unset)')!r} -> {str(bundle_root)!r}")
    if "device" in adapted:
        adapted["device"] = f"$torch.device({quoted_device})"
        notes.append(f"device: {config['device']!r} -> {adapted['device']!r}")
    for key in REDIRECTED_DIRS:
        if key in adapted:
            target = str(scratch / key.removesuffix("_dir"))
            notes.append(f"{key}: {config[key]!r} -> {target!r}")
            adapted[key] = target
    return adapted, notes


def _limit_workers(value: Any, where: str, notes: list[str], requested: int | None) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            at = f"{where}::{key}" if where else str(key)
            if key == "num_workers" and isinstance(item, int) and not isinstance(item, bool):
                limit = suited_num_workers(item) if requested is None else requested
                if limit != item:
                    notes.append(f"{at}: {item} -> {limit}")
                out[key] = limit
            else:
                out[key] = _limit_workers(item, at, notes, requested)
        return out
    if isinstance(value, list):
        return [_limit_workers(v, f"{where}::{i}", notes, requested) for i, v in enumerate(value)]
    return value
