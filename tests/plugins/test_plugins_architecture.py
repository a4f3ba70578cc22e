"""Boundaries kept by a test: headless code never imports Qt; torch and monai load only lazily."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "workstation"
HEADLESS = ("core", "dicom", "records", "plugins", "store", "commands", "models", "testing")
QT = ("PySide6", "pyqtgraph", "shiboken6")
HEAVY = ("torch", "monai")


def imports(tree: ast.AST) -> list[tuple[str, int, bool]]:
    """(top-level package, line, at module level outside TYPE_CHECKING) for every import."""
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((a.name.split(".")[0], child.lineno, top) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                found.append((child.module.split(".")[0], child.lineno, top))
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, False)
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                visit(child, False)
                for other in child.orelse:
                    visit(other, top)
            else:
                visit(child, top)

    visit(tree, True)
    return found


def sources(*parts: str) -> list[Path]:
    files: list[Path] = []
    for part in parts:
        target = PACKAGE / part
        files += sorted(target.rglob("*.py")) if target.is_dir() else [target.with_suffix(".py")]
    return [f for f in files if f.exists()]


def violations(files: list[Path], banned: tuple[str, ...], module_level_only: bool) -> list[str]:
    found = []
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        for name, line, top in imports(tree):
            if name in banned and (top or not module_level_only):
                where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                found.append(f"{where}:{line} imports {name}")
    return found


def test_headless_packages_never_import_qt() -> None:
    files = sources(*HEADLESS, "cli", "__init__")
    assert files, "no sources found"
    assert violations(files, QT, module_level_only=False) == []


# The design asks Volume to convert to torch tensors; that one method imports torch when called.
CORE_TORCH_ALLOWED = {("workstation/core/volume.py", "Volume.to_torch")}


def test_core_never_imports_torch_or_monai() -> None:
    found = []
    for path in sources("core"):
        tree = ast.parse(path.read_text())
        for cls in [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)] + [tree]:
            for fn in getattr(cls, "body", []):
                name = f"{getattr(cls, 'name', '')}.{getattr(fn, 'name', '')}".lstrip(".")
                for heavy, line, _ in imports(ast.Module(body=[fn], type_ignores=[])):
                    allowed = (str(path.relative_to(ROOT)), name) in CORE_TORCH_ALLOWED
                    if heavy in HEAVY and not allowed and isinstance(fn, ast.FunctionDef):
                        found.append(f"{path.relative_to(ROOT)}:{line} {name} imports {heavy}")
    assert violations(sources("core"), HEAVY, module_level_only=True) == []
    assert found == []


def test_no_module_level_torch_or_monai_anywhere_in_the_host() -> None:
    assert violations(sorted(PACKAGE.rglob("*.py")), HEAVY, module_level_only=True) == []


def test_the_scanner_finds_what_it_must(tmp_path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\nimport torch\nif TYPE_CHECKING:\n    import monai\n"
        "def f():\n    import PySide6.QtCore\n"
    )
    found = imports(ast.parse(sample.read_text()))
    assert ("torch", 2, True) in found and ("monai", 4, False) in found
    assert ("PySide6", 6, False) in found
    assert [v.split(":", 1)[1] for v in violations([sample], HEAVY, True)] == ["2 imports torch"]
    assert len(violations([sample], QT, False)) == 1


@pytest.mark.parametrize("command", [["plugins", "--json"], ["runs", "--json"]])
def test_listing_imports_no_torch_monai_or_qt(command, tmp_path) -> None:
    """Run the CLI in a fresh interpreter and report which heavy modules ended up imported."""
    code = (
        "import json, sys\n"
        "from workstation.cli import main\n"
        f"rc = main({command!r})\n"
        f"loaded = [m for m in {HEAVY + QT!r} if m in sys.modules]\n"
        "sys.stderr.write('LOADED=' + json.dumps(loaded))\n"
        "sys.exit(rc)\n"
    )
    env = {**os.environ, "WORKSTATION_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stderr.rsplit("LOADED=", 1)[1])
    assert loaded == []
    json.loads(done.stdout)  # the listing itself is valid JSON
