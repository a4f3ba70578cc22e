"""Discovery: entry points, broken and refused plugins listed with why, the others carry on."""

from __future__ import annotations

import importlib

import pytest

from workstation.plugins.manager import (
    UnknownAnalysis,
    get_plugin_manager,
    load_registry,
)
from workstation.plugins.version import API_VERSION

GOOD = """
from workstation.plugins.api import AnalysisSpec, Parameter, ReaderSpec, hookimpl

WORKSTATION_PLUGIN_API = "1.0"


@hookimpl
def workstation_analyses():
    return [AnalysisSpec(id="good.measure", title="Measure", version="0.3.0",
                         entry="good_model_that_does_not_exist:run", returns=["measurements"],
                         parameters=[Parameter("size", "int", default=3, min=1, help="voxels")])]


@hookimpl
def workstation_readers():
    return [ReaderSpec(id="good.npy", title="NumPy", extensions=[".npy"], entry="numpy:load")]
"""


def plugin_source(api: str = "1.0", analysis_id: str = "other.thing", body: str = "") -> str:
    return f"""
from workstation.plugins.api import AnalysisSpec, hookimpl

WORKSTATION_PLUGIN_API = {api!r}


@hookimpl
def workstation_analyses():
    {body or "pass"}
    return [AnalysisSpec(id={analysis_id!r}, title="T", version="1", entry="m:f",
                         returns=["report"])]
"""


def test_entry_point_plugins_listed_with_distribution(fake_distribution) -> None:
    fake_distribution("workstation-good", "0.3.0", {"ws_good_ep": GOOD}, {"good": "ws_good_ep"})
    registry = load_registry(autoload=True)
    entry = registry.analysis("good.measure")
    assert entry.plugin.distribution == "workstation-good"
    assert entry.plugin.distribution_version == "0.3.0"
    assert entry.status == "ok"
    assert registry.reader_for("/x/volume.NPY").spec.id == "good.npy"
    as_json = registry.to_dict()
    listed = next(a for a in as_json["analyses"] if a["id"] == "good.measure")
    assert (
        listed["parameters"][0]["name"] == "size" and listed["distribution"] == "workstation-good"
    )


def test_listing_does_not_import_analysis_code(fake_distribution) -> None:
    fake_distribution("workstation-good2", "1.0", {"ws_good_ep2": GOOD}, {"good2": "ws_good_ep2"})
    load_registry(autoload=True)
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("good_model_that_does_not_exist")


def test_plugin_failing_to_import_is_broken_and_others_carry_on(fake_distribution) -> None:
    fake_distribution(
        "workstation-mixed",
        "2.0",
        {"ws_fails_import": "import not_installed_dependency_xyz\n", "ws_fine": GOOD},
        {"broken": "ws_fails_import", "fine": "ws_fine"},
    )
    registry = load_registry(autoload=True)
    broken = next(p for p in registry.plugins if p.name == "broken")
    assert broken.status == "broken"
    assert "No module named 'not_installed_dependency_xyz'" in broken.error
    assert broken.distribution == "workstation-mixed"
    assert registry.analysis("good.measure").status == "ok"
    assert any("plugin broken: broken" in line for line in registry.problems)


def test_autoload_off_by_environment(fake_distribution, monkeypatch) -> None:
    fake_distribution("workstation-good3", "1.0", {"ws_good_ep3": GOOD}, {"good3": "ws_good_ep3"})
    monkeypatch.setenv("WORKSTATION_NO_PLUGIN_AUTOLOAD", "1")
    assert "good.measure" not in load_registry().analyses
    monkeypatch.delenv("WORKSTATION_NO_PLUGIN_AUTOLOAD")
    assert "good.measure" in load_registry().analyses


def test_incompatible_api_version_is_refused_naming_both(write_module) -> None:
    module = importlib.import_module(write_module(plugin_source(api="2.0")))
    registry = load_registry([module])
    info = registry.plugins[0]
    assert info.status == "refused"
    assert "plugin API 2.0" in info.error and f"implements plugin API {API_VERSION}" in info.error
    assert registry.entries == []
    with pytest.raises(UnknownAnalysis, match="refused"):
        registry.analysis("other.thing")


def test_missing_api_version_is_refused_with_the_fix(write_module) -> None:
    source = plugin_source().replace("WORKSTATION_PLUGIN_API = '1.0'", "")
    registry = load_registry([importlib.import_module(write_module(source))])
    assert registry.plugins[0].status == "refused"
    error = registry.plugins[0].error
    assert 'add WORKSTATION_PLUGIN_API = "1.0"' in error  # what the tutorial and docs declare
    assert f"implements plugin API {API_VERSION}" in error


def test_hook_that_raises_marks_plugin_broken(write_module, sample_plugin) -> None:
    bad = importlib.import_module(
        write_module(plugin_source(body="raise RuntimeError('config file missing')"))
    )
    registry = load_registry([bad, sample_plugin])
    assert registry.plugins[0].status == "broken"
    assert "RuntimeError: config file missing" in registry.plugins[0].error
    assert "sample.threshold" in registry.analyses


def test_misspelled_hook_is_reported(write_module) -> None:
    source = plugin_source().replace("def workstation_analyses", "def workstation_analysis")
    registry = load_registry([importlib.import_module(write_module(source))])
    assert registry.plugins[0].status == "broken"
    assert "did you mean 'workstation_analyses'" in registry.plugins[0].error


def test_hook_returning_wrong_type_is_broken(write_module) -> None:
    source = plugin_source().replace("return [AnalysisSpec(", "return [dict(")
    registry = load_registry([importlib.import_module(write_module(source))])
    assert "returned dict, expected AnalysisSpec" in registry.plugins[0].error


def test_duplicate_analysis_ids_reported(write_module) -> None:
    first = importlib.import_module(write_module(plugin_source(analysis_id="dup.seg")))
    second = importlib.import_module(write_module(plugin_source(analysis_id="dup.seg")))
    registry = load_registry([first, second])
    statuses = [e.status for e in registry.entries]
    assert statuses == ["ok", "refused"]
    assert "declared by both" in registry.entries[1].error
    assert registry.analysis("dup.seg").plugin.plugin is first


def test_unknown_analysis_suggests_a_close_id(sample_plugin) -> None:
    registry = load_registry([sample_plugin])
    with pytest.raises(UnknownAnalysis, match=r"did you mean 'sample\.threshold'"):
        registry.analysis("sample.treshold")


def test_plugins_argument_gives_only_those_plugins(sample_plugin, fake_distribution) -> None:
    fake_distribution("workstation-good4", "1.0", {"ws_good_ep4": GOOD}, {"good4": "ws_good_ep4"})
    pm = get_plugin_manager(plugins=[sample_plugin])
    assert [p.name for p in pm.infos.values()] == [sample_plugin.__name__]
    assert "good.measure" not in pm.registry().analyses


def test_hook_names_list_every_hookspec() -> None:
    from workstation.plugins import hookspecs

    specs = {n for n in dir(hookspecs) if n.startswith("workstation_")}
    assert set(hookspecs.HOOK_NAMES) == specs
    for name in specs:
        assert len(getattr(hookspecs, name).__doc__ or "") > 100, f"{name} needs a docstring"
