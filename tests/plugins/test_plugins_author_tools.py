"""What a plugin author meets first: `plugins check` messages and the `workstation.testing`
helpers, used exactly as docs/writing-plugins.md §5 shows them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from workstation.core.volume import Volume
from workstation.plugins.check import check_plugin
from workstation.testing.helpers import make_plugin_manager, run_analysis

PLUGIN = """
import numpy as np
from workstation.plugins.api import AnalysisSpec, Label, LabelMap, Parameter, Report, hookimpl

{api}


@hookimpl
def workstation_analyses():
    return [
        AnalysisSpec(id="{prefix}.mask", title="Mask", version="0.1", description="Above lower.",
                     entry=__name__ + ":mask", returns=["label_map"],
                     parameters=[Parameter("lower", "float", default=0.0, help="{help}")]),
        AnalysisSpec(id="{prefix}.weights", title="Weights", version="0.1",
                     description="Says which weights it got.", entry=__name__ + ":weights",
                     returns=["report"]),
    ]


def mask(ctx):
    array = (ctx.volume.array > ctx.params["lower"]).astype(np.uint8)
    return LabelMap(name="mask", volume=ctx.volume.with_array(array), labels=[Label(1, "on")])


def weights(ctx):
    return Report(name="weights", text=str(ctx.weights))
"""


def write_plugin(
    folder: Path, name: str, api: str = 'WORKSTATION_PLUGIN_API = "1.0"', help: str = "lowest"
) -> Path:
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(PLUGIN.format(api=api, prefix=name, help=help)))
    return path


@pytest.fixture
def module_name(tmp_path, monkeypatch) -> str:
    monkeypatch.syspath_prepend(str(tmp_path))
    write_plugin(tmp_path, "ws_author_plugin")
    return "ws_author_plugin"


def volume() -> Volume:
    return Volume(np.arange(60, dtype=np.int16).reshape(3, 4, 5), spacing=(1.0, 1.0, 2.0))


# --- plugins check ------------------------------------------------------------------------------
def test_check_does_not_call_a_declaration_valid_after_an_error(tmp_path) -> None:
    report = check_plugin(str(write_plugin(tmp_path, "ws_nohelp", help="")), run=False)
    lines = [f.line() for f in report.findings if "ws_nohelp.mask" in f.subject]
    assert any("ERROR" in line and "parameter 'lower' has no help text" in line for line in lines)
    assert not any("declaration valid" in line for line in lines), lines
    assert not report.passed
    other = [f.line() for f in report.findings if "ws_nohelp.weights" in f.subject]
    assert any("declaration valid" in line for line in other)


def test_a_plugin_without_an_api_version_is_told_to_declare_1_0(tmp_path) -> None:
    report = check_plugin(str(write_plugin(tmp_path, "ws_noapi", api="")), run=False)
    (error,) = [f.message for f in report.findings if f.level == "error"]
    assert 'add WORKSTATION_PLUGIN_API = "1.0" to the plugin module' in error
    assert '"1.1" if it uses AnalysisSpec.train_entry' in error


def test_check_by_distribution_name_from_inside_its_project_folder(
    fake_distribution, tmp_path, monkeypatch
) -> None:
    """The package folder in the project has the distribution's name but no pyproject.toml:
    the installed distribution is checked."""
    source = textwrap.dedent(
        PLUGIN.format(api='WORKSTATION_PLUGIN_API = "1.0"', prefix="d", help="x")
    )
    fake_distribution(
        "ws-dist-check", "1.0", {"ws_dist_check_hooks": source}, {"d": "ws_dist_check_hooks"}
    )
    project = tmp_path / "project"
    (project / "ws_dist_check").mkdir(parents=True)
    monkeypatch.chdir(project)
    report = check_plugin("ws_dist_check", run=False)
    assert report.passed, [f.line() for f in report.findings]
    assert any(f.subject == "analysis d.mask" for f in report.findings)


def test_check_of_a_folder_that_is_neither_project_nor_distribution(tmp_path) -> None:
    (tmp_path / "notaplugin").mkdir()
    report = check_plugin(str(tmp_path / "notaplugin"), run=False)
    (error,) = [f.message for f in report.findings]
    assert "no pyproject.toml, so it is not a plugin project folder" in error
    assert "installed distribution name" in error


# --- testing helpers ----------------------------------------------------------------------------
def test_make_plugin_manager_takes_a_single_module_name(module_name) -> None:
    registry = make_plugin_manager(module_name).registry()
    assert [e.id for e in registry.entries] == ["ws_author_plugin.mask", "ws_author_plugin.weights"]
    assert registry.problems == []
    with pytest.raises(ModuleNotFoundError, match="ws_no_such_plugin"):
        make_plugin_manager("ws_no_such_plugin")


def test_run_analysis_passes_the_users_weights(module_name, tmp_path) -> None:
    model = tmp_path / "model.pt"
    model.write_bytes(b"weights")
    results = run_analysis("ws_author_plugin.weights", volume(), plugins=module_name, weights=model)
    assert results.one("report").text == str(model)
    missing = run_analysis(
        "ws_author_plugin.weights",
        volume(),
        plugins=[module_name],
        weights=tmp_path / "missing.pt",
        check=False,
    )
    assert missing.outcome.outcome == "refused"
    assert f"weights {tmp_path / 'missing.pt'}: no such file or folder" in missing.outcome.error


def test_run_analysis_without_plugins_uses_the_installed_ones(
    fake_distribution, module_name
) -> None:
    source = textwrap.dedent(
        PLUGIN.format(api='WORKSTATION_PLUGIN_API = "1.0"', prefix="inst", help="x")
    )
    fake_distribution(
        "ws-installed", "1.0", {"ws_installed_hooks": source}, {"inst": "ws_installed_hooks"}
    )
    results = run_analysis("inst.mask", volume())  # installed: found through its entry point
    assert results.one("label_map").volume.array.sum() == 59
    named_only = run_analysis("ws_author_plugin.mask", volume(), plugins=[module_name])
    assert named_only.outcome.ok
    from workstation.plugins.manager import UnknownAnalysis

    with pytest.raises(UnknownAnalysis):  # plugins= given: only those are loaded
        run_analysis("inst.mask", volume(), plugins=[module_name])


def test_a_second_synthetic_series_in_the_same_folder_is_refused_clearly(tmp_path) -> None:
    from workstation.testing.synthetic import make_synthetic_ct_series

    store = tmp_path / "store"
    first = make_synthetic_ct_series(tmp_path / "ct", store, shape=(3, 16, 16), lesions=0)
    with pytest.raises(FileExistsError) as caught:
        make_synthetic_ct_series(tmp_path / "ct", store, shape=(3, 16, 16), seed=1, lesions=0)
    message = str(caught.value)
    assert str(tmp_path / "ct") in message and "already holds a DICOM series" in message
    assert "its own folder" in message
    second = make_synthetic_ct_series(tmp_path / "ct-2", store, shape=(3, 16, 16), lesions=0)
    assert second.series_id != first.series_id
    np.testing.assert_array_equal(first.open().array, first.hu)  # the first is untouched


def test_the_guide_shows_every_run_analysis_option() -> None:
    import inspect

    from workstation.testing import helpers

    guide = (Path(__file__).resolve().parents[2] / "docs" / "writing-plugins.md").read_text()
    row = next(line for line in guide.splitlines() if line.startswith("| `run_analysis` |"))
    options = inspect.signature(helpers.run_analysis).parameters
    missing = [n for n in options if n not in ("analysis", "inputs", "store_dir") and n not in row]
    assert not missing, f"docs/writing-plugins.md §5 run_analysis row lacks {missing}"


def test_the_shipped_weights_are_demo_however_the_user_chose_them(module_name, tmp_path) -> None:
    """Picking the shipped file by its path (as the window's weights list does) still labels the
    results as made with demo weights; a copy of it elsewhere is the user's own model."""
    import dataclasses
    import shutil

    from workstation.plugins.declarations import resolve_weights

    spec = make_plugin_manager(module_name).registry().analysis("ws_author_plugin.weights").spec
    shipped_spec = dataclasses.replace(spec, weights="workstation.testing:phantoms.py")
    shipped = resolve_weights(shipped_spec.weights)
    by_default = run_analysis(shipped_spec, volume())
    by_path = run_analysis(shipped_spec, volume(), weights=shipped)
    own = tmp_path / "own.pt"
    shutil.copy(shipped, own)
    by_copy = run_analysis(shipped_spec, volume(), weights=own)
    assert by_default.outcome.demo_weights and by_path.outcome.demo_weights
    assert not by_copy.outcome.demo_weights
