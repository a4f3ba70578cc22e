"""Finding plugins and collecting their declarations into a `Registry`.

Plugins come from the ``workstation.plugins`` entry-point group (unless
``WORKSTATION_NO_PLUGIN_AUTOLOAD=1``) and from the `plugins` argument (tests, built-ins). Each
plugin is loaded and asked for its declarations on its own, so one that fails to import, raises
in a hook, implements an unknown hook or targets another API version is listed with the reason
(status "broken" or "refused") and the others carry on. Only the light hook modules are
imported here; analysis code is imported when it runs.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import os
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from workstation.plugins import hookspecs
from workstation.plugins.declarations import AnalysisSpec, PanelSpec, ReaderSpec
from workstation.plugins.version import API_VERSION, API_VERSION_ATTRIBUTE, incompatibility

AUTOLOAD_ENV = "WORKSTATION_NO_PLUGIN_AUTOLOAD"
OK, BROKEN, REFUSED = "ok", "broken", "refused"
_HOOK_NAMES = hookspecs.HOOK_NAMES
_EXPECTED = {
    "workstation_analyses": AnalysisSpec,
    "workstation_readers": ReaderSpec,
    "workstation_gui_panels": PanelSpec,
}


class UnknownAnalysis(LookupError):
    """No installed plugin declares this analysis id; the message suggests close ids."""


@dataclass
class PluginInfo:
    """One plugin as the user sees it in `workstation plugins`."""

    name: str
    module: str = ""
    distribution: str | None = None
    distribution_version: str | None = None
    api_version: str | None = None
    status: str = OK
    error: str | None = None
    traceback: str | None = None
    plugin: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "distribution_version": self.distribution_version,
            "api_version": self.api_version,
            "status": self.status,
            "error": self.error,
        }


@dataclass
class AnalysisEntry:
    """A declared analysis and the plugin that declared it; `status` is "ok" unless refused
    (e.g. its id is already taken by another plugin)."""

    spec: AnalysisSpec
    plugin: PluginInfo
    status: str = OK
    error: str | None = None

    @property
    def id(self) -> str:
        return self.spec.id

    def to_dict(self) -> dict[str, Any]:
        out = self.spec.to_dict()
        out.update(
            plugin=self.plugin.name,
            distribution=self.plugin.distribution,
            distribution_version=self.plugin.distribution_version,
            status=self.status,
            error=self.error,
        )
        return out


@dataclass
class ReaderEntry:
    spec: ReaderSpec
    plugin: PluginInfo

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.spec.to_dict(),
            "plugin": self.plugin.name,
            "distribution": self.plugin.distribution,
        }


@dataclass
class PanelEntry:
    spec: PanelSpec
    plugin: PluginInfo


@dataclass
class Registry:
    """Every plugin found, with its analyses, readers and panels. Built by `load_registry()`."""

    plugins: list[PluginInfo] = field(default_factory=list)
    entries: list[AnalysisEntry] = field(default_factory=list)
    readers: list[ReaderEntry] = field(default_factory=list)
    panels: list[PanelEntry] = field(default_factory=list)

    @property
    def analyses(self) -> dict[str, AnalysisEntry]:
        """The runnable analyses by id (status ok)."""
        return {e.id: e for e in self.entries if e.status == OK}

    @property
    def problems(self) -> list[str]:
        lines = [f"plugin {p.name}: {p.status}: {p.error}" for p in self.plugins if p.status != OK]
        lines += [f"analysis {e.id}: {e.status}: {e.error}" for e in self.entries if e.status != OK]
        return lines

    def analysis(self, analysis_id: str) -> AnalysisEntry:
        """The runnable analysis `analysis_id`, else UnknownAnalysis saying why."""
        for entry in self.entries:
            if entry.id == analysis_id and entry.status == OK:
                return entry
        for entry in self.entries:
            if entry.id == analysis_id:
                raise UnknownAnalysis(f"analysis {analysis_id!r} is {entry.status}: {entry.error}")
        known = [e.id for e in self.entries if e.status == OK]
        close = difflib.get_close_matches(analysis_id, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        broken = [p for p in self.plugins if p.status != OK]
        if broken:
            hint += " (not loaded: " + ", ".join(f"{p.name} is {p.status}" for p in broken) + ")"
        if not known and not broken:
            hint += "; no analysis plugins are installed"
        raise UnknownAnalysis(f"no analysis {analysis_id!r}{hint}")

    def reader_for(self, path: str | Path) -> ReaderEntry | None:
        """The reader whose longest extension matches `path` ('.nii.gz' beats '.gz')."""
        best: tuple[int, ReaderEntry] | None = None
        for entry in self.readers:
            for ext in entry.spec.extensions:
                if str(path).lower().endswith(ext) and (best is None or len(ext) > best[0]):
                    best = (len(ext), entry)
        return best[1] if best else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "api_version": API_VERSION,
            "analyses": [e.to_dict() for e in self.entries],
            "plugins": [p.to_dict() for p in self.plugins],
            "readers": [r.to_dict() for r in self.readers],
            "panels": [{**p.spec.to_dict(), "plugin": p.plugin.name} for p in self.panels],
            "problems": self.problems,
        }


class WorkstationPluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers plugins it could not load, and why."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}

    def add_plugin(
        self, plugin: Any, name: str | None = None, info: PluginInfo | None = None
    ) -> PluginInfo:
        """Register `plugin` (a module, class or object with hookimpls) after checking its API
        version and hook names; never raises for a bad plugin, the returned info says why."""
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        info = info or PluginInfo(name=name)
        info.plugin = plugin
        info.module = info.module or getattr(plugin, "__name__", type(plugin).__module__)
        declared = getattr(plugin, API_VERSION_ATTRIBUTE, None)
        info.api_version = None if declared is None else str(declared)
        if name in self.infos or self.has_plugin(name):
            info.status, info.error = REFUSED, f"another plugin is already registered as {name!r}"
            self.infos[f"{name} ({info.distribution or info.module})"] = info
            return info
        self.infos[name] = info
        if (why := incompatibility(declared)) is not None:
            info.status, info.error = REFUSED, why
            return info
        unknown = _unknown_hooks(plugin)
        if unknown:
            info.status = BROKEN
            info.error = "; ".join(unknown)
            return info
        try:
            self.register(plugin, name=name)
        except Exception as error:  # pluggy validation: wrong hook signature, ...
            info.status, info.error = BROKEN, f"{type(error).__name__}: {error}"
        return info

    def add_broken(
        self, name: str, error: BaseException, info: PluginInfo | None = None
    ) -> PluginInfo:
        info = info or PluginInfo(name=name)
        info.status = BROKEN
        info.error = f"{type(error).__name__}: {error}"
        info.traceback = "".join(traceback.format_exception(error))
        self.infos[name] = info
        return info

    def load_entry_points(self, group: str = hookspecs.ENTRY_POINT_GROUP) -> None:
        """Import and register every plugin in the entry-point group, each on its own."""
        for ep in sorted(importlib.metadata.entry_points(group=group), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                name=ep.name,
                module=ep.value,
                distribution=dist.metadata["Name"] if dist is not None else None,
                distribution_version=dist.version if dist is not None else None,
            )
            try:
                plugin = ep.load()
            except BaseException as error:
                if isinstance(error, KeyboardInterrupt):
                    raise
                self.add_broken(ep.name, error, info)
                continue
            self.add_plugin(plugin, name=ep.name, info=info)

    def registry(self) -> Registry:
        """Ask every registered plugin for its declarations and collect them."""
        registry = Registry(plugins=list(self.infos.values()))
        for info in registry.plugins:
            if info.status != OK:
                continue
            try:
                analyses = _declarations(info.plugin, "workstation_analyses")
                readers = _declarations(info.plugin, "workstation_readers")
                panels = _declarations(info.plugin, "workstation_gui_panels")
            except Exception as error:
                info.status = BROKEN
                info.error = f"{type(error).__name__}: {error}"
                info.traceback = "".join(traceback.format_exception(error))
                continue
            taken = {e.id: e for e in registry.entries if e.status == OK}
            for spec in analyses:
                entry = AnalysisEntry(spec, info)
                if spec.id in taken:
                    entry.status = REFUSED
                    entry.error = (
                        f"analysis id {spec.id!r} is declared by both "
                        f"{taken[spec.id].plugin.name!r} and {info.name!r}; the first one is used"
                    )
                else:
                    taken[spec.id] = entry
                registry.entries.append(entry)
            registry.readers += [ReaderEntry(s, info) for s in readers]
            registry.panels += [PanelEntry(s, info) for s in panels]
        return registry


def get_plugin_manager(
    plugins: Sequence[Any] | None = None, autoload: bool | None = None
) -> WorkstationPluginManager:
    """The host's plugin manager.

    `plugins`: modules, classes or objects with hookimpls (or ``(name, plugin)`` pairs) to
    register. `autoload`: load the entry-point group too; by default True unless
    ``WORKSTATION_NO_PLUGIN_AUTOLOAD=1``, and False when `plugins` is given so tests get only
    the plugins they name.
    """
    pm = WorkstationPluginManager()
    if autoload is None:
        autoload = plugins is None and not autoload_disabled()
    if autoload:
        pm.load_entry_points()
    for item in plugins or ():
        name, plugin = item if isinstance(item, tuple) else (None, item)
        pm.add_plugin(plugin, name=name)
    return pm


def autoload_disabled() -> bool:
    """True when ``WORKSTATION_NO_PLUGIN_AUTOLOAD`` turns entry-point loading off."""
    return os.environ.get(AUTOLOAD_ENV, "").strip().lower() in ("1", "true", "yes")


def load_registry(plugins: Sequence[Any] | None = None, autoload: bool | None = None) -> Registry:
    """`get_plugin_manager(plugins, autoload).registry()`: the usual way to list analyses."""
    return get_plugin_manager(plugins, autoload).registry()


def _declarations(plugin: Any, hook: str) -> list[Any]:
    function = getattr(plugin, hook, None)
    if function is None:
        return []
    result = function()
    if result is None:
        return []
    items = list(result) if isinstance(result, Iterable) else [result]
    expected = _EXPECTED[hook]
    for item in items:
        if not isinstance(item, expected):
            raise TypeError(
                f"{hook}() returned {type(item).__name__}, expected {expected.__name__}"
            )
    return items


def _unknown_hooks(plugin: Any) -> list[str]:
    """Names that look like hook implementations but match no hook (a typo would otherwise be
    silently ignored)."""
    problems = []
    for attr in dir(plugin):
        if not attr.startswith("workstation_") or attr in _HOOK_NAMES:
            continue
        value = getattr(plugin, attr, None)
        if callable(value) and hasattr(value, f"{hookspecs.PROJECT_NAME}_impl"):
            close = difflib.get_close_matches(attr, _HOOK_NAMES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(f"unknown hook {attr!r}{hint}")
    return problems
