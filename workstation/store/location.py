"""Where the store lives: `--store DIR`, else $WORKSTATION_HOME, else the XDG data folder."""

from __future__ import annotations

import os
from pathlib import Path


def default_store_dir() -> Path:
    """$WORKSTATION_HOME, else $XDG_DATA_HOME/workstation, else ~/.local/share/workstation."""
    if home := os.environ.get("WORKSTATION_HOME"):
        return Path(home).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home).expanduser() / "workstation"


def resolve_store_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    return Path(explicit).expanduser() if explicit else default_store_dir()
