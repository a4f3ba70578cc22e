"""Suite-wide settings: Qt offscreen, and a store that never touches the user's real one."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _isolated_store_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Point the default store at a temporary folder so no test writes into ~/.local/share."""
    home = tmp_path_factory.mktemp("workstation-home")
    monkeypatch.setenv("WORKSTATION_HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg-config"))
