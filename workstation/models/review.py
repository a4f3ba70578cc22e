"""What a bundle would execute, found by reading its files as plain data (nothing is evaluated).

MONAI bundle configs are code: every ``"$import ..."`` line runs as soon as any entry of the
config is parsed, ``"$..."`` expressions are Python `eval`, ``"_target_"`` names any importable
callable (``os.system`` included), and ``"%file#id"`` macros pull in other files. A bundle may also
ship Python in `scripts/`. Before the user trusts a bundle they see all of that here. Configs are
read with `json.loads` only; YAML configs are listed as not reviewable (the host does not parse
them before trust).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workstation.models.errors import BundleError

CONFIG_SUFFIXES = (".json", ".yaml", ".yml")


@dataclass
class BundleReview:
    """Everything in a bundle that runs code when it is loaded, with the config id where it is."""

    path: Path
    imports: list[tuple[str, str]] = field(default_factory=list)  # (config file#id, "$import x")
    expressions: list[tuple[str, str]] = field(default_factory=list)  # (file#id, "$expr")
    targets: list[tuple[str, str]] = field(default_factory=list)  # (file#id, dotted _target_)
    macros: list[tuple[str, str]] = field(default_factory=list)  # (file#id, "%other.json#x")
    python_files: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # configs that could not be reviewed

    @property
    def runs_code(self) -> bool:
        return bool(self.imports or self.expressions or self.targets or self.python_files)

    def render(self, limit: int = 40) -> str:
        """A plain-text report for the terminal and error messages (long lists are cut)."""
        lines = [f"What {self.path} would run when loaded:"]
        sections = (
            ("$import lines (run as soon as the config is parsed)", self.imports),
            ("$ expressions (Python, evaluated when used)", self.expressions),
            ("_target_ components outside MONAI's own names", self.targets),
            ("% macros (read other files)", self.macros),
        )
        for title, items in sections:
            if items:
                lines.append(f"  {title}:")
                lines += [f"    {where}: {text}" for where, text in items[:limit]]
                if len(items) > limit:
                    lines.append(f"    ... and {len(items) - limit} more")
        if self.python_files:
            lines.append("  Python files (importable by the config):")
            lines += [f"    {name}" for name in self.python_files[:limit]]
        if self.unreadable:
            lines.append("  Not reviewed (the host reads only JSON before trust):")
            lines += [f"    {name}" for name in self.unreadable]
        if len(lines) == 1 and self.path.is_file():
            lines.append(
                "  a checkpoint file, not a bundle: a file of tensors only (a state_dict) loads "
                "without trust; anything else in it is unpickled when loaded, which can run "
                "code, so it loads only once trusted"
            )
        elif len(lines) == 1:
            lines.append("  nothing: no $ expressions, imports, custom components or Python files")
        return "\n".join(lines)


def read_json(path: Path) -> Any:
    """Plain JSON, with a clear error naming the file."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise BundleError(f"{path}: cannot read: {error}") from error
    except json.JSONDecodeError as error:
        raise BundleError(
            f"{path}: not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}"
        ) from error


def _walk(value: Any, file: str, where: str, review: BundleReview) -> None:
    """Collect code-bearing entries; ids use MONAI's ``a::b::0`` form, prefixed by the file."""
    at = f"{file}#{where}"
    if isinstance(value, dict):
        target = value.get("_target_")
        if isinstance(target, str) and "." in target.lstrip("$@%"):
            review.targets.append((at, target))
        for key, item in value.items():
            _walk(item, file, f"{where}::{key}" if where else str(key), review)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, file, f"{where}::{index}" if where else str(index), review)
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("$"):
            body = text[1:].lstrip()
            found = review.imports if body.startswith(("import ", "from ")) else review.expressions
            found.append((at, text))
        elif text.startswith("%"):
            review.macros.append((at, text))


def review_bundle(path: Path) -> BundleReview:
    """Read every config of a bundle (or nothing, for a checkpoint file) as plain data."""
    path = Path(path)
    review = BundleReview(path=path)
    if path.is_file():
        return review
    configs = path / "configs"
    for config in sorted(configs.glob("*")) if configs.is_dir() else []:
        if config.suffix.lower() not in CONFIG_SUFFIXES or not config.is_file():
            continue
        relative = config.relative_to(path).as_posix()
        if config.suffix.lower() != ".json":
            review.unreadable.append(relative)
            continue
        try:
            content = read_json(config)
        except BundleError as error:
            review.unreadable.append(f"{relative} ({error})")
            continue
        _walk(content, relative, "", review)
    review.python_files = sorted(
        p.relative_to(path).as_posix() for p in path.rglob("*") if p.suffix in (".py", ".pyc")
    )
    return review
