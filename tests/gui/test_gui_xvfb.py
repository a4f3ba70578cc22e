"""The real window on a real X server (Xvfb): the same `view` a radiologist opens, through Qt's xcb
platform instead of offscreen rendering, so missing system libraries or X problems show in CI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workstation.core import Volume

XVFB = shutil.which("Xvfb")


@pytest.fixture
def x_display(tmp_path: Path):
    """A private Xvfb server; its display number is chosen by Xvfb itself (-displayfd)."""
    if XVFB is None:
        pytest.skip("Xvfb is not installed (CI installs Debian's xvfb)")
    read_end, write_end = os.pipe()
    server = subprocess.Popen(
        [XVFB, "-displayfd", str(write_end), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        number = pipe.readline().strip()
    if not number:
        server.kill()
        pytest.fail("Xvfb did not report a display number")
    yield f":{number}"
    server.terminate()
    server.wait(timeout=10)


@pytest.mark.gui
def test_view_opens_a_real_window_on_x_and_shows_the_image(x_display: str, tmp_path: Path) -> None:
    array = np.full((12, 48, 48), -1000, dtype=np.int16)
    array[4:8, 16:32, 16:32] = 1000  # a bright cube in the middle
    image = tmp_path / "cube.nii.gz"
    Volume(array, spacing=(1.0, 1.0, 2.0)).to_nifti().to_filename(image)
    shot = tmp_path / "shot.png"
    env = {**os.environ, "DISPLAY": x_display, "QT_QPA_PLATFORM": "xcb"}
    done = subprocess.run(
        [sys.executable, "-m", "workstation.cli", "view", str(image), "--screenshot", str(shot),
         "--size", "900x600", "--layout", "1x1", "--preset", "Bone"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L")).astype(int)
    assert pixels.shape[1] >= 800
    # Bone window W 1800 L 400 spans -500..1300 HU: 1000 HU shows at (1500 / 1800) * 255 = 212
    cube = np.abs(pixels - 212) <= 3
    rows, columns = np.nonzero(cube)
    assert cube.sum() > 5_000
    centre = np.array([rows.mean(), columns.mean()]) / pixels.shape
    assert np.allclose(centre, [0.5, 0.5], atol=0.1)  # in the middle of the window
    assert (pixels < 15).sum() > 50_000  # air (-1000 HU, below the window) is black
