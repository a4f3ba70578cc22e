"""The tree keeps its rules: ruff lint and format, and the import contracts (pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TREES = ["workstation", "tests", "plugins", "benchmarks"]


def _ruff() -> list[str]:
    found = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if found is None:
        pytest.fail("ruff is not installed; the set-up installs it with the test extras")
    return [found]


def test_ruff_lint_passes() -> None:
    result = subprocess.run(
        [*_ruff(), "check", "--output-format", "concise", *TREES],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_applied() -> None:
    result = subprocess.run(
        [*_ruff(), "format", "--check", *TREES], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_contracts_hold() -> None:
    """import-linter contracts in pyproject.toml: only the GUI imports Qt; core needs no torch."""
    linter = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if linter is None:
        pytest.fail("import-linter is not installed; the set-up installs it with the test extras")
    result = subprocess.run([linter], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
