"""Synthetic volumes for the viewer tests: chosen acquisition orientations, markers at known
patient positions, and a place to save screenshots (kept when WORKSTATION_SCREENSHOTS is set)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from workstation.core.volume import Volume

L, P, S = np.eye(3)


def rotation(axis: np.ndarray, degrees: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    a = np.radians(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * (k @ k)


ACQUISITIONS: dict[str, np.ndarray] = {
    # columns: where the i (column), j (row) and k (slice) axes point in LPS
    "axial": np.column_stack([L, P, S]),
    "axial_flipped": np.column_stack([-L, P, -S]),  # rows run right-to-left, slices downwards
    "coronal": np.column_stack([L, -S, P]),
    "sagittal": np.column_stack([P, -S, -L]),
    "oblique": rotation(np.array([1.0, 0.2, 0.0]), 20) @ rotation(S, 30),
}


def make_volume(
    direction: np.ndarray,
    shape: tuple[int, int, int] = (24, 28, 32),
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    background: int = 0,
    metadata: dict | None = None,
) -> Volume:
    """A volume whose centre voxel sits at LPS (0, 0, 0)."""
    array = np.full(shape, background, dtype=np.int16)
    nz, ny, nx = shape
    centre_index = np.array([(nx - 1) / 2, (ny - 1) / 2, (nz - 1) / 2])
    origin = -(np.asarray(direction) * np.asarray(spacing)[None, :]) @ centre_index
    return Volume(
        array,
        spacing=spacing,
        origin=tuple(origin),
        direction=direction,
        metadata=dict(metadata or {"modality": "CT", "window_center": 40, "window_width": 400}),
    )


def put_marker(
    volume: Volume, lps: np.ndarray, value: int, radius: int = 1
) -> tuple[int, int, int]:
    """A (2r+1)^3 block of `value` around the voxel nearest `lps`; returns that voxel (i, j, k)."""
    i, j, k = np.rint(volume.world_to_index(lps)).astype(int)
    r = radius
    volume.array[
        max(k - r, 0) : k + r + 1, max(j - r, 0) : j + r + 1, max(i - r, 0) : i + r + 1
    ] = value
    return int(i), int(j), int(k)


@pytest.fixture
def shots_dir(tmp_path: Path) -> Path:
    """Where screenshots go: $WORKSTATION_SCREENSHOTS to keep them, else the test's tmp folder."""
    folder = Path(os.environ.get("WORKSTATION_SCREENSHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def synth():
    """The helpers above, for test modules (conftest modules are not importable by name)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        make_volume=make_volume, put_marker=put_marker, acquisitions=ACQUISITIONS, rotation=rotation
    )
