"""`workstation plugins check`: what a plugin author runs before publishing.

Checks a plugin given as an installed distribution name, a project folder (with pyproject.toml
declaring the ``workstation.plugins`` entry point) or a single module file: its API version,
hook names, declarations, documented parameters, that importing its hook module does not import
torch or monai, and that every image analysis runs on a small synthetic CT volume and returns
what it declares.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import json
import logging
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workstation.core.refs import SeriesRef
from workstation.core.volume import Volume
from workstation.plugins.context import AnalysisInputs
from workstation.plugins.declarations import InputKind, resolve_weights
from workstation.plugins.hookspecs import ENTRY_POINT_GROUP
from workstation.plugins.manager import OK, get_plugin_manager

HEAVY_MODULES = ("torch", "monai")


@dataclass
class Finding:
    level: str  # "ok", "warning", "error"
    subject: str
    message: str

    def line(self) -> str:
        return f"{self.level.upper():7} {self.subject}: {self.message}"


@dataclass
class CheckReport:
    target: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not any(f.level == "error" for f in self.findings)

    def add(self, level: str, subject: str, message: str) -> None:
        self.findings.append(Finding(level, subject, message))

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "passed": self.passed,
            "findings": [f.__dict__ for f in self.findings],
        }


def synthetic_ct_volume(shape: tuple[int, int, int] = (12, 48, 48)) -> Volume:
    """A small CT-like volume in HU: air, a soft-tissue body, a bone disc, a denser lesion."""
    z, y, x = np.indices(shape, dtype=np.float32)
    cz, cy, cx = (s / 2 for s in shape)
    array = np.full(shape, -1000.0, dtype=np.float32)
    body = ((y - cy) / (0.42 * shape[1])) ** 2 + ((x - cx) / (0.45 * shape[2])) ** 2 <= 1
    array[body] = 40.0
    bone = ((y - cy * 1.3) ** 2 + (x - cx) ** 2) <= (0.08 * shape[2]) ** 2
    array[bone] = 700.0
    lesion = ((z - cz) * 2.5) ** 2 + ((y - cy * 0.7) * 0.8) ** 2 + ((x - cx * 1.2) * 0.8) ** 2 <= 36
    array[lesion] = 120.0
    array += np.random.default_rng(0).normal(0, 5, shape).astype(np.float32)
    ref = SeriesRef(series_uid="2.25.1", study_uid="2.25.2", patient_id="SYNTHETIC", modality="CT")
    return Volume(
        np.round(array).astype(np.int16),
        spacing=(0.8, 0.8, 2.5),
        origin=(-19.2, -19.2, 0.0),
        source=ref,
        metadata={"modality": "CT", "synthetic": True},
    )


def check_plugin(target: str, run: bool = True, timeout: float = 120.0) -> CheckReport:
    report = CheckReport(target)
    try:
        plugins = _load_target(target, report)
    except Exception as error:
        report.add("error", target, f"{type(error).__name__}: {error}")
        return report
    if not plugins:
        report.add("error", target, f"declares no {ENTRY_POINT_GROUP!r} entry point")
        return report
    pm = get_plugin_manager(plugins=[(name, plugin) for name, plugin, _ in plugins], autoload=False)
    registry = pm.registry()
    for name, _, module_name in plugins:
        info = pm.infos.get(name)
        if info is None or info.status != OK:
            report.add(
                "error", f"plugin {name}", f"{info.status}: {info.error}" if info else "not loaded"
            )
            continue
        report.add("ok", f"plugin {name}", f"loaded; plugin API {info.api_version}")
        _check_light_import(module_name, name, report)
    for entry in registry.entries:
        _check_declaration(entry, report)
    for reader in registry.readers:
        report.add("ok", f"reader {reader.spec.id}", f"handles {', '.join(reader.spec.extensions)}")
    if run:
        _run_analyses(registry, report, timeout)
    return report


def _load_target(target: str, report: CheckReport) -> list[tuple[str, Any, str]]:
    """(name, plugin object, module name) for each plugin the target declares."""
    path = Path(target)
    # a folder named like an installed distribution (the package folder inside its project)
    # without a pyproject.toml of its own means the distribution
    project = path.is_dir() and ((path / "pyproject.toml").exists() or not _installed(target))
    if project:
        pyproject = path / "pyproject.toml"
        if not pyproject.exists():
            raise FileNotFoundError(
                f"{path}: no pyproject.toml, so it is not a plugin project folder (and no "
                f"distribution named {target!r} is installed); give the project folder, a "
                "module .py file or an installed distribution name"
            )
        data = tomllib.loads(pyproject.read_text())
        points = data.get("project", {}).get("entry-points", {}).get(ENTRY_POINT_GROUP, {})
        for root in (path / "src", path):
            if root.is_dir() and str(root) not in sys.path:
                sys.path.insert(0, str(root))
        return [_import_point(name, value, report) for name, value in points.items()]
    if path.suffix == ".py" and path.is_file():
        sys.path.insert(0, str(path.parent.resolve()))
        return [_import_point(path.stem, path.stem, report)]
    try:
        dist = importlib.metadata.distribution(target)
    except importlib.metadata.PackageNotFoundError:
        raise LookupError(
            f"no installed distribution and no plugin folder or .py file named {target!r}"
        ) from None
    points = [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
    return [_import_point(ep.name, ep.value, report) for ep in points]


def _installed(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return False
    return True


def _import_point(name: str, value: str, report: CheckReport) -> tuple[str, Any, str]:
    module_name, _, attr = value.partition(":")
    module = importlib.import_module(module_name)
    plugin = getattr(module, attr) if attr else module
    return name, plugin, module_name


def _check_light_import(module_name: str, name: str, report: CheckReport) -> None:
    code = (
        "import importlib, json, sys; importlib.import_module(sys.argv[1]); "
        f"print(json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run(
        [sys.executable, "-c", code, module_name],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=None,
        check=False,
    )
    if done.returncode != 0:
        report.add(
            "error",
            f"plugin {name}",
            f"importing {module_name} failed: {done.stderr.strip()[-400:]}",
        )
        return
    heavy = json.loads(done.stdout.strip().splitlines()[-1])
    if heavy:
        report.add(
            "error",
            f"plugin {name}",
            f"importing {module_name} imports {', '.join(heavy)}; listing plugins must stay light: "
            "import them inside the analysis entry module instead",
        )
    else:
        report.add("ok", f"plugin {name}", f"importing {module_name} loads no torch or monai")


def _check_declaration(entry, report: CheckReport) -> None:
    spec = entry.spec
    subject = f"analysis {spec.id}"
    if entry.status != OK:
        report.add("error", subject, f"{entry.status}: {entry.error}")
        return
    if not spec.description:
        report.add(
            "error", subject, "has no description (shown in the GUI and `workstation plugins`)"
        )
    if not spec.returns:
        report.add("error", subject, "declares no result kinds in `returns`")
    for parameter in spec.parameters:
        if not parameter.help:
            report.add("error", subject, f"parameter {parameter.name!r} has no help text")
        if parameter.default is None:
            report.add(
                "warning",
                subject,
                f"parameter {parameter.name!r} has no default; every run must give it",
            )
    if spec.weights is not None:
        try:
            weights = resolve_weights(spec.weights)
            if weights is None or not weights.exists():
                report.add("warning", subject, f"weights {spec.weights!r} not found at {weights}")
        except Exception as error:
            report.add("error", subject, f"weights {spec.weights!r}: {error}")
    if not any(f.subject == subject and f.level == "error" for f in report.findings):
        report.add("ok", subject, f"declaration valid ({len(spec.parameters)} parameters)")


def _run_analyses(registry, report: CheckReport, timeout: float) -> None:
    from workstation.plugins.runner import Runner

    volume = synthetic_ct_volume()
    with Runner(registry, store_dir=None) as runner:
        for entry in registry.entries:
            if entry.status != OK:
                continue
            spec, subject = entry.spec, f"analysis {entry.spec.id}"
            if InputKind.IMAGE_SERIES not in spec.inputs:
                report.add(
                    "warning", subject, "takes only patient records; not run on synthetic input"
                )
                continue
            if spec.device == "needs_gpu":
                from workstation.plugins.devices import available_gpus

                if not available_gpus():
                    report.add("warning", subject, "needs a GPU and none is available; not run")
                    continue
            defaults_missing = [p.name for p in spec.parameters if p.default is None]
            if defaults_missing:
                report.add(
                    "warning", subject, f"not run: no defaults for {', '.join(defaults_missing)}"
                )
                continue
            sample = _labelled_for(volume, spec.modalities)
            inputs = AnalysisInputs(volume=sample, series=sample.source)
            if InputKind.PATIENT_RECORDS in spec.inputs:
                inputs.patient_id = "SYNTHETIC"
                inputs.records = _no_records
            warnings: list[str] = []

            def keep_warning(level: int, message: str, found: list[str] = warnings) -> None:
                if level >= logging.WARNING:
                    found.append(message)

            outcome = runner.run(
                spec.id,
                inputs,
                timeout=min(timeout, spec.timeout or timeout),
                on_log=keep_warning,
            )
            for message in warnings:
                report.add("warning", subject, f"on a synthetic CT volume: {message}")
            if outcome.ok:
                kinds = ", ".join(r.kind for r in outcome.results) or "nothing"
                report.add(
                    "ok",
                    subject,
                    f"ran on a synthetic CT volume in {outcome.duration_s:.2f} s: {kinds}",
                )
            else:
                detail = f"\n{outcome.traceback}" if outcome.traceback else ""
                report.add(
                    "error",
                    subject,
                    f"on a synthetic CT volume: {outcome.outcome}: {outcome.error}{detail}",
                )


def _labelled_for(volume: Volume, modalities: tuple[str, ...]) -> Volume:
    """The synthetic CT, relabelled as the first modality an analysis takes when it does not
    take CT (so the run is not refused for its modality; it checks the plumbing, not the
    model's answer)."""
    if not modalities or "CT" in modalities:
        return volume
    source = dataclasses.replace(volume.source, modality=modalities[0])
    metadata = {**volume.metadata, "modality": modalities[0]}
    return dataclasses.replace(volume, source=source, metadata=metadata)


def _no_records() -> list:
    return []
