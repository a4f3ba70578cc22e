"""What an evaluation evaluated: the checks made once before any case runs, and the record of
the analysis, weights, parameters, device, seed and versions that goes into summary.json.

Everything refused here (an unknown parameter, a device this machine lacks, weights that are
not there) would be refused the same way for every case, so it is refused once, up front.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workstation.evaluation.common import EvaluationRefused

DEMO_NOTICE = "DEMO WEIGHTS - NOT FOR CLINICAL USE"
DEMO_TITLE = "DEMO WEIGHTS: not for clinical use"
DEMO_COLUMN = "demo_weights"  # as in every `workstation run` CSV


@dataclass
class EvaluationSetup:
    """The run settings every case gets, as the runner will use them."""

    analysis_id: str
    parameters: dict[str, Any]
    parameters_given: dict[str, Any]
    device: str
    device_requested: str
    seed: int
    weights: Path | None
    weights_given: bool
    demo_weights: bool
    versions: dict[str, str | None] = field(default_factory=dict)
    plugin: dict[str, str | None] = field(default_factory=dict)
    uses_model: bool = False

    def record(self) -> dict[str, Any]:
        """The summary.json entries that say what was evaluated."""
        from workstation.plugins.declarations import weights_sha256

        record: dict[str, Any] = {
            "demo_weights": self.demo_weights,
            "weights": {
                "path": str(self.weights) if self.weights else None,
                "sha256": weights_sha256(self.weights) if self.weights else None,
                "demo": self.demo_weights,
                "given": self.weights_given,
            },
            "uses_model": self.uses_model,
            "parameters": self.parameters,
            "parameters_given": self.parameters_given,
            "device": self.device,
            "device_requested": self.device_requested,
            "seed": self.seed,
            "plugin": self.plugin,
            "versions": self.versions,
        }
        if self.demo_weights:
            record["notice"] = (
                f"{DEMO_NOTICE}: scored with the demo weights shipped with the plugin (trained on "
                "synthetic data only); give your own with --weights"
            )
        return record


def prepare(
    entry: Any,
    params: Mapping[str, Any] | None,
    device: str,
    weights: str | os.PathLike[str] | None,
    seed: int,
) -> EvaluationSetup:
    """Check the settings once, as `Runner.run` will for each case, and resolve them to the
    values used. Raises EvaluationRefused with the runner's own message."""
    from workstation.plugins.declarations import (
        ParameterError,
        check_user_weights,
        is_package_resource,
        resolve_weights,
    )
    from workstation.plugins.devices import DeviceUnavailable, select_device
    from workstation.plugins.version import API_VERSION

    spec = entry.spec
    try:
        parameters = spec.coerce_parameters(params)
        chosen = select_device(spec.id, spec.device, device)
        if weights is not None:
            weights_path = check_user_weights(resolve_weights(weights))
        else:
            weights_path = resolve_weights(spec.weights)
    except (ParameterError, DeviceUnavailable) as error:
        raise EvaluationRefused(f"{spec.id}: {error}") from None
    demo = (
        weights_path is not None
        and is_package_resource(spec.weights)
        and (weights is None or _same_file(weights_path, resolve_weights(spec.weights)))
    )
    plugin = entry.plugin
    return EvaluationSetup(
        analysis_id=spec.id,
        parameters=parameters,
        parameters_given=dict(params or {}),
        device=chosen,
        device_requested=device,
        seed=seed,
        weights=weights_path,
        weights_given=weights is not None,
        demo_weights=demo,
        versions={
            "workstation": _version("workstation"),
            "plugin_api": API_VERSION,
            "python": sys.version.split()[0],
            "torch": _version("torch"),
            "monai": _version("monai"),
        },
        plugin={
            "name": plugin.name,
            "distribution": plugin.distribution,
            "version": plugin.distribution_version,
            "plugin_api_declared": plugin.api_version,
        },
        uses_model=spec.weights is not None or weights is not None,
    )


def _same_file(a: Path, b: Path | None) -> bool:
    try:
        return b is not None and a.resolve() == b.resolve()
    except OSError:
        return False


def _version(distribution: str) -> str | None:
    """An installed distribution's version, read from its metadata (nothing imported)."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
