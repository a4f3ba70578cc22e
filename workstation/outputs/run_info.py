"""What the writers need to know about a run: which analysis made the results, with which
parameters, on which input and device, and whether it used demo weights.

The runner builds one per run (`RunInfo(...)`, or `RunInfo.coerce(mapping)` from a plain dict with
the same keys); the writers put it into every DICOM header they write and into ``run.json``.
"""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from workstation.core.refs import SeriesRef
from workstation.core.volume import Volume


@dataclass
class RunInfo:
    """One run of one analysis.

    `source_series` / `source_volume` are the run's input (a `SeriesRef` with paths when it was a
    DICOM series); writers reference them. `demo_weights` marks every output as made with demo
    weights. `uses_model` says the analysis is a trained model (set when it declares weights).
    """

    analysis_id: str
    analysis_version: str = ""
    analysis_title: str = ""
    plugin: str = ""
    distribution: str | None = None
    distribution_version: str | None = None
    run_id: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    mode: str = ""
    seed: int | None = None
    started_at: str = ""
    duration_s: float | None = None
    weights: str | None = None
    weights_sha256: str | None = None
    demo_weights: bool = False
    uses_model: bool = False
    versions: dict[str, str | None] = field(default_factory=dict)
    source_series: SeriesRef | None = field(default=None, repr=False)
    source_volume: Volume | None = field(default=None, repr=False)

    @classmethod
    def coerce(cls, value: RunInfo | Mapping[str, Any]) -> RunInfo:
        """A `RunInfo` from itself or from a mapping: either these field names at the top level,
        or the runner's shape with an ``analysis`` block (id, title, version, plugin,
        distribution, distribution_version)."""
        if isinstance(value, RunInfo):
            return value
        if not isinstance(value, Mapping):
            raise TypeError(f"run_info must be a RunInfo or a mapping, got {type(value).__name__}")
        data = dict(value)
        analysis = data.pop("analysis", None) or {}
        if isinstance(analysis, Mapping):
            renames = {
                "id": "analysis_id",
                "version": "analysis_version",
                "title": "analysis_title",
            }
            for key, item in analysis.items():
                data.setdefault(renames.get(key, key), item)
        weights = data.get("weights")
        if isinstance(weights, Mapping):
            data["weights"] = weights.get("path")
            data.setdefault("weights_sha256", weights.get("sha256"))
            data.setdefault("demo_weights", bool(weights.get("demo")))
        known = {f.name for f in fields(cls)}
        if "analysis_id" not in data:
            raise ValueError("run_info has no analysis id")
        extra = {k: v for k, v in data.items() if k not in known}
        info = cls(**{k: v for k, v in data.items() if k in known})
        info.versions = {**info.versions, **{k: v for k, v in extra.get("versions", {}).items()}}
        return info

    def provenance(self) -> Any:
        """The DICOM writers' view of this run (`workstation.dicom.write.Provenance`), naming
        the weights in DerivationDescription."""
        return run_provenance(
            analysis_id=self.analysis_id,
            analysis_version=self.analysis_version or "unknown",
            title=self.analysis_title,
            plugin=self.plugin,
            distribution=self.distribution or "",
            workstation_version=self.all_versions().get("workstation") or "",
            parameters={k: _text(v) for k, v in self.parameters.items()},
            demo_weights=self.demo_weights,
            uses_model=self.uses_model or bool(self.weights),
            weights=self.weights_text(),
        )

    def weights_text(self) -> str:
        """'model.pt sha256 0123abcd4567 (demo)' for headers; '' without weights."""
        if not self.weights:
            return ""
        text = Path(self.weights).name
        if self.weights_sha256:
            text += f" sha256 {self.weights_sha256[:16]}"
        return text + (" (demo)" if self.demo_weights else "")

    def all_versions(self) -> dict[str, str | None]:
        """Versions of what made the results: the workstation, the plugin's distribution,
        Python, numpy, and torch/monai when the run loaded them; given values win."""
        found: dict[str, str | None] = {
            "workstation": _distribution_version("workstation"),
            "python": platform.python_version(),
            "numpy": _module_version("numpy"),
        }
        if self.distribution:
            found[self.distribution] = self.distribution_version or _distribution_version(
                self.distribution
            )
        for module in ("torch", "monai"):
            if module in sys.modules:
                found[module] = _module_version(module)
        try:
            from workstation.plugins.version import API_VERSION

            found["plugin_api"] = API_VERSION
        except ImportError:  # pragma: no cover - the plugin host is part of the workstation
            pass
        found.update({k: v for k, v in self.versions.items() if v is not None})
        return found

    def to_manifest(self) -> dict[str, Any]:
        """The run.json fields about the run itself (outputs are added by the writer)."""
        return {
            "run_id": self.run_id,
            "analysis": {
                "id": self.analysis_id,
                "title": self.analysis_title,
                "version": self.analysis_version,
                "plugin": self.plugin,
                "distribution": self.distribution,
                "distribution_version": self.distribution_version,
            },
            "parameters": {k: _jsonable(v) for k, v in self.parameters.items()},
            "inputs": {k: _jsonable(v) for k, v in self.inputs.items()},
            "device": self.device,
            "mode": self.mode,
            "seed": self.seed,
            "started_at": self.started_at,
            "duration_s": self.duration_s,
            "weights": {
                "path": self.weights,
                "sha256": self.weights_sha256,
                "demo": self.demo_weights,
            },
            "demo_weights": self.demo_weights,
            "versions": self.all_versions(),
        }


def run_provenance(**fields_: Any) -> Any:
    """A `workstation.dicom.write.Provenance` (imported only when a DICOM object is written)."""
    from workstation.dicom.write.provenance import Provenance

    return Provenance(**fields_)


def _distribution_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _module_version(name: str) -> str | None:
    module = sys.modules.get(name)
    if module is None:
        try:
            module = __import__(name)
        except ImportError:
            return None
    return str(getattr(module, "__version__", "")) or None


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)
