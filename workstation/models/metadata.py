"""A bundle's metadata.json and large_files.yml, read as plain data (safe before trust).

`monai_version` and `pytorch_version` in metadata.json are the versions the bundle was tested
with, not minimums: most bundles keep working across minor releases, so a different major.minor is
reported as a warning, never a refusal. Whether the bundle really builds is found out by building
it (see `bundle.load_bundle`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

from workstation.models.errors import BundleError
from workstation.models.review import read_json

_VERSION = re.compile(r"(\d+)\.(\d+)")


@dataclass(frozen=True)
class BundleMetadata:
    """What metadata.json says; `labels` maps output channel index -> name (network_data_format)."""

    name: str
    version: str = ""
    monai_version: str = ""
    pytorch_version: str = ""
    required_packages_version: dict[str, str] = field(default_factory=dict)
    labels: dict[int, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


def read_metadata(bundle: Path) -> BundleMetadata:
    """configs/metadata.json as `BundleMetadata`; a bundle without one gets its folder name."""
    path = Path(bundle) / "configs" / "metadata.json"
    if not path.is_file():
        return BundleMetadata(name=Path(bundle).name)
    raw = read_json(path)
    if not isinstance(raw, dict):
        raise BundleError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    required = raw.get("required_packages_version") or raw.get("optional_packages_version") or {}
    return BundleMetadata(
        name=str(raw.get("name") or Path(bundle).name),
        version=str(raw.get("version") or ""),
        monai_version=str(raw.get("monai_version") or ""),
        pytorch_version=str(raw.get("pytorch_version") or ""),
        required_packages_version={str(k): str(v) for k, v in dict(required).items()},
        labels=_output_labels(raw),
        raw=raw,
    )


def _output_labels(raw: dict[str, Any]) -> dict[int, str]:
    """channel_def of the first output in network_data_format (e.g. {0: background, 1: spleen})."""
    outputs = (raw.get("network_data_format") or {}).get("outputs") or {}
    for output in outputs.values():
        channels = (output or {}).get("channel_def") or {}
        labels = {}
        for key, name in channels.items():
            try:
                labels[int(key)] = str(name)
            except (TypeError, ValueError):
                continue
        if labels:
            return dict(sorted(labels.items()))
    return {}


def major_minor(version: str) -> tuple[int, int] | None:
    match = _VERSION.search(version or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def installed_version(package: str) -> str | None:
    try:
        return package_metadata.version(package)
    except package_metadata.PackageNotFoundError:
        return None


def version_warnings(meta: BundleMetadata) -> list[str]:
    """Differences between what the bundle was tested with and what is installed (warnings)."""
    warnings = []
    for label, package, tested in (
        ("MONAI", "monai", meta.monai_version),
        ("PyTorch", "torch", meta.pytorch_version),
    ):
        installed = installed_version(package)
        if tested and installed and major_minor(tested) != major_minor(installed):
            warnings.append(
                f"bundle '{meta.name}' was tested with {label} {tested}; this workstation has "
                f"{label} {installed}. It usually still works; compare results with the bundle's "
                f"documented figures."
            )
    for package in meta.required_packages_version:
        if package.lower() in ("monai", "torch", "pytorch"):
            continue
        if installed_version(package) is None:
            warnings.append(
                f"bundle '{meta.name}' lists package '{package}' "
                f"({meta.required_packages_version[package]}), which is not installed"
            )
    return warnings


def large_file_urls(bundle: Path) -> dict[str, str]:
    """relative path -> URL from large_files.yml/.yaml/.json. Read only: nothing is downloaded.

    The model-zoo template is a flat YAML list of ``path:``/``url:`` pairs; it is parsed line by
    line so no YAML library is needed (and no YAML tags can run)."""
    bundle = Path(bundle)
    for name in ("large_files.yml", "large_files.yaml", "large_file.yml", "large_file.yaml"):
        path = bundle / name
        if path.is_file():
            return _parse_large_files_yaml(path.read_text(encoding="utf-8", errors="replace"))
    for name in ("large_files.json", "large_file.json"):
        path = bundle / name
        if path.is_file():
            content = read_json(path)
            entries = content.get("large_files", []) if isinstance(content, dict) else []
            return {str(e["path"]): str(e.get("url", "")) for e in entries if "path" in e}
    return {}


def _parse_large_files_yaml(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    current_path: str | None = None
    for line in text.splitlines():
        stripped = line.strip().removeprefix("- ").strip()
        key, _, value = stripped.partition(":")
        value = value.strip().strip("\"'")
        if key == "path":
            current_path = value.removeprefix("./")
            found.setdefault(current_path, "")
        elif key == "url" and current_path is not None:
            found[current_path] = value
    return found
