"""pytest fixtures for workstation plugin authors (loaded through the `pytest11` entry point).

    def test_my_analysis(synthetic_ct_volume, run_analysis):
        results = run_analysis("my_plugin.analysis", synthetic_ct_volume, params={"level": 2},
                               plugins=["my_plugin.plugin"])
        assert results.one("label_map").volumes_ml()[1] > 0

Importing this module is cheap (pytest imports it in every run of every project that has the
workstation installed): the workstation, numpy and DICOM code load inside the fixtures.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def workstation_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty, temporary store folder; also made the default store (WORKSTATION_HOME) so
    `workstation ...` commands run in the test use it and never the user's own."""
    store = tmp_path / "workstation-store"
    store.mkdir()
    monkeypatch.setenv("WORKSTATION_HOME", str(store))
    return store


@pytest.fixture
def synthetic_ct_series(tmp_path: Path, workstation_store: Path) -> Any:
    """A small synthetic CT series (16 x 64 x 64, 2 x 2 x 4 mm, HU) written to disk and indexed
    into `workstation_store`: a `workstation.testing.synthetic.SyntheticSeries` with `paths`,
    `series_id`, the exact `hu` values and the ground-truth `labels` (body, lung, bone, liver,
    kidney, lesion; see `label_names`)."""
    from workstation.testing.synthetic import make_synthetic_ct_series

    return make_synthetic_ct_series(tmp_path / "synthetic-ct", workstation_store)


@pytest.fixture
def synthetic_ct_volume(synthetic_ct_series: Any) -> Any:
    """`synthetic_ct_series` loaded as a `Volume` (HU, LPS geometry, `source` = its SeriesRef),
    exactly what an analysis gets as ``ctx.volume``."""
    return synthetic_ct_series.open()


@pytest.fixture
def plugin_manager_factory() -> Callable[..., Any]:
    """``plugin_manager_factory(*plugins, autoload=False)``: a plugin manager with only the
    given plugins (modules, module names, objects, `AnalysisSpec`s); call ``.registry()`` on it
    to see what they declare, with the status and error of each."""
    from workstation.testing.helpers import make_plugin_manager

    def factory(*plugins: Any, autoload: bool = False) -> Any:
        return make_plugin_manager(list(plugins), autoload=autoload)

    return factory


@pytest.fixture
def run_analysis(workstation_store: Path) -> Callable[..., Any]:
    """``run_analysis(analysis_id_or_spec, volume_or_series, params=..., plugins=[...],
    weights=None, out_dir=None, device="cpu", isolated=False, timeout=None, seed=0,
    patient_id=None, check=True)``: run through the host's runner (run recorded in
    `workstation_store`) and return the results; raises `AnalysisFailed` with the host's
    message when the run fails (pass ``check=False`` to inspect ``.outcome``). Without
    `plugins` the installed plugins are loaded, as `workstation run` does."""
    from workstation.testing.helpers import run_analysis as run

    def runner(analysis: Any, inputs: Any = None, **options: Any) -> Any:
        options.setdefault("store_dir", workstation_store)
        return run(analysis, inputs, **options)

    return runner
