"""Checking written DICOM against the standard with dciodvfy (dicom3tools), for tests.

    report = validate_dicom(path)
    assert report.errors == [], report.text

dciodvfy is a command-line tool (Debian/Ubuntu: ``apt-get install dicom3tools``);
`dciodvfy_available()` tells whether it is installed.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class DciodvfyReport:
    """dciodvfy's verdict on one file: its error and warning lines, and the whole output."""

    path: Path
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    text: str = ""


def dciodvfy_available() -> bool:
    return shutil.which("dciodvfy") is not None


def validate_dicom(path: str | Path, timeout: float = 60.0) -> DciodvfyReport:
    """Run dciodvfy on `path`; raises FileNotFoundError when dciodvfy is not installed."""
    executable = shutil.which("dciodvfy")
    if executable is None:
        raise FileNotFoundError("dciodvfy is not installed (apt-get install dicom3tools)")
    completed = subprocess.run(
        [executable, str(path)], capture_output=True, text=True, timeout=timeout, check=False
    )
    text = completed.stdout + completed.stderr
    lines = [line.strip() for line in text.splitlines()]
    return DciodvfyReport(
        path=Path(path),
        errors=[line for line in lines if line.startswith(("Error", "Abort"))],
        warnings=[line for line in lines if line.startswith("Warning")],
        text=text,
    )
