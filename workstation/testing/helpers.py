"""Plain-function versions of the pytest fixtures: a plugin manager with only the plugins you
name, and running an analysis the way the host does (same runner, same checks) to get its
results back.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from workstation.core.results import Result
from workstation.core.volume import Volume
from workstation.plugins.api import API_VERSION, AnalysisInputs, AnalysisSpec, hookimpl


class AnalysisFailed(AssertionError):
    """The analysis did not succeed; the message is the host's (outcome and error), and the
    analysis' traceback follows when it raised."""

    def __init__(self, outcome: Any) -> None:
        text = outcome.message()
        if outcome.traceback:
            text += "\n\n" + outcome.traceback
        super().__init__(text)
        self.outcome = outcome


class Results(list):
    """The results of one run (a list), with the runner's `outcome` (run id, device, duration,
    written `outputs`) and shortcuts to pick results by kind."""

    outcome: Any = None

    def of_kind(self, kind: str) -> list[Result]:
        return [r for r in self if r.kind == kind]

    def one(self, kind: str) -> Result:
        """The single result of `kind` ('label_map', 'measurements', ...)."""
        found = self.of_kind(kind)
        if len(found) != 1:
            kinds = ", ".join(r.kind for r in self) or "nothing"
            raise AssertionError(f"expected one {kind}, the analysis returned: {kinds}")
        return found[0]


class SpecPlugin:
    """A plugin made on the spot from `AnalysisSpec`s (tests of an analysis function that is
    not packaged yet)."""

    WORKSTATION_PLUGIN_API = API_VERSION

    def __init__(self, specs: Iterable[AnalysisSpec]) -> None:
        self.specs = list(specs)

    @hookimpl
    def workstation_analyses(self) -> list[AnalysisSpec]:
        return list(self.specs)


def as_plugin(item: Any) -> Any:
    """Accepts a plugin module/object, a module name ("my_plugin.plugin"), an `AnalysisSpec`
    or a ``(name, plugin)`` pair, as `get_plugin_manager` wants them."""
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        return (item[0], as_plugin(item[1]))
    if isinstance(item, AnalysisSpec):
        return (f"spec:{item.id}", SpecPlugin([item]))
    if isinstance(item, str):
        return importlib.import_module(item)
    return item


def make_plugin_manager(plugins: Any = (), autoload: bool = False) -> Any:
    """A plugin manager holding only `plugins` (entry points too when `autoload`).

    `plugins` is one plugin or a list of them: modules, module names ("my_plugin.plugin"),
    plugin objects, `AnalysisSpec`s or ``(name, plugin)`` pairs."""
    from workstation.plugins.manager import get_plugin_manager

    return get_plugin_manager([as_plugin(p) for p in plugin_list(plugins)], autoload=autoload)


def plugin_list(plugins: Any) -> list[Any]:
    """`plugins` as a list: a single module name, module, spec or pair is one plugin (a string
    is never taken letter by letter)."""
    if plugins is None:
        return []
    if isinstance(plugins, str | AnalysisSpec) or not isinstance(plugins, Iterable):
        return [plugins]
    pair = isinstance(plugins, tuple) and len(plugins) == 2 and isinstance(plugins[0], str)
    if pair and not isinstance(plugins[1], str):  # ("name", plugin), not two module names
        return [plugins]
    return list(plugins)


def inputs_for(value: Any, registry: Any = None) -> AnalysisInputs:
    """What the analysis runs on: a `Volume` (its `source` kept), a synthetic series, a file or
    DICOM folder path (read as ``workstation run --input`` does), or `AnalysisInputs`."""
    if value is None:
        return AnalysisInputs()
    if isinstance(value, AnalysisInputs):
        return value
    if isinstance(value, Volume):
        patient = (value.source.patient_id or None) if value.source else None
        return AnalysisInputs(volume=value, series=value.source, patient_id=patient)
    if hasattr(value, "open") and hasattr(value, "series_id"):  # SyntheticSeries
        return inputs_for(value.open())
    if isinstance(value, str | os.PathLike):
        from workstation.plugins.inputs import from_path

        return from_path(Path(value), registry)
    raise TypeError(
        f"cannot run an analysis on a {type(value).__name__}; "
        "give a Volume, a path or AnalysisInputs"
    )


def run_analysis(
    analysis: str | AnalysisSpec,
    inputs: Any = None,
    *,
    params: Mapping[str, Any] | None = None,
    plugins: Any = None,
    weights: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    store_dir: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    isolated: bool = False,
    timeout: float | None = None,
    seed: int = 0,
    patient_id: str | None = None,
    check: bool = True,
) -> Results:
    """Run an analysis through the host's runner and return its results.

    `analysis` is an id or an `AnalysisSpec` to run directly. `plugins` (one or a list, as
    `make_plugin_manager` takes them) are the only plugins loaded; without `plugins` the
    installed plugins are loaded, as `workstation run` does (and an `AnalysisSpec` runs alone).
    `weights` are the user's weights (``--weights``). With `out_dir` the results are also
    written there (DICOM, NIfTI, JSON/CSV, run.json). With `check` (the default) a run that does
    not succeed raises `AnalysisFailed` with the host's message; otherwise look at
    ``results.outcome``.
    """
    from workstation.plugins.runner import Runner

    named = plugin_list(plugins)
    if isinstance(analysis, AnalysisSpec):
        named, analysis_id, autoload = [analysis, *named], analysis.id, False
    else:
        analysis_id, autoload = analysis, plugins is None
    registry = make_plugin_manager(named, autoload=autoload).registry()
    run_inputs = inputs_for(inputs, registry)
    if patient_id is not None:
        run_inputs.patient_id = patient_id
    with Runner(registry, store_dir=store_dir) as runner:
        outcome = runner.run(
            analysis_id,
            run_inputs,
            params=params,
            device=device,
            isolated=isolated,
            timeout=timeout,
            seed=seed,
            weights=weights,
            out_dir=out_dir,
        )
    if check and not outcome.ok:
        raise AnalysisFailed(outcome)
    results = Results(outcome.results)
    results.outcome = outcome
    return results
