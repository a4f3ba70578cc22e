"""Analyses from the GUI: the menu offers what fits the selection, the form comes from the
declared parameters, a run goes through the isolated worker while the event loop stays
responsive, results come back as overlays, and a run can be cancelled."""

from __future__ import annotations

import importlib
import sys
import textwrap
import time
import uuid

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QElapsedTimer, QSettings, QTimer
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QMenu

from workstation.gui.analyses import ensure_jobs_panel, fill_analyses_menu, start
from workstation.gui.main_window import MainWindow
from workstation.gui.parameter_form import ParameterDialog

pytestmark = pytest.mark.gui

PLUGIN = """
import time
import numpy as np
from workstation.plugins.api import (
    AnalysisSpec, InputKind, Label, LabelMap, Parameter, Report, hookimpl,
)

WORKSTATION_PLUGIN_API = "1.0"
M = __name__


@hookimpl
def workstation_analyses():
    return [
        AnalysisSpec(id="gui.busy", title="Busy threshold", version="1.0", entry=f"{M}:busy",
                     returns=["label_map"], parameters=[
                         Parameter("lower", "float", default=100.0, min=-1000, max=3000,
                                   help="voxels above this are labelled"),
                         Parameter("smooth", "bool", default=False, help="smooth first"),
                         Parameter("mode", "choice", default="fast", choices=["fast", "exact"],
                                   help="speed or accuracy"),
                     ]),
        AnalysisSpec(id="gui.forever", title="Runs until cancelled", version="1.0",
                     entry=f"{M}:forever", returns=["report"]),
        AnalysisSpec(id="gui.records", title="Records only", version="1.0", entry=f"{M}:forever",
                     inputs=[InputKind.PATIENT_RECORDS], returns=["report"]),
        AnalysisSpec(id="gui.weighted", title="Says its weights", version="1.0",
                     entry=f"{M}:weighted", returns=["report"], weights="declared-weights.pt"),
    ]


def weighted(ctx):
    import os

    if os.path.isdir(ctx.weights):  # a model folder, e.g. a MONAI bundle
        return Report(name="weights", text="folder: " + ",".join(sorted(os.listdir(ctx.weights))))
    return Report(name="weights", text=open(ctx.weights).read())


def busy(ctx):
    deadline = time.monotonic() + 1.0
    x = np.random.default_rng(0).random((300, 300))
    n = 0
    while time.monotonic() < deadline:  # CPU-heavy: the worker process is busy, not the GUI
        x = np.sqrt(x * x + 1e-3)
        n += 1
        ctx.progress(min(0.9, n / 200), "thresholding")
    mask = (ctx.volume.array > ctx.params["lower"]).astype(np.uint8)
    return LabelMap(name="busy mask", volume=ctx.volume.with_array(mask),
                    labels=[Label(1, "above", (255, 0, 0))])


def forever(ctx):
    ctx.progress(0.0, "started")
    while True:
        ctx.check_cancelled()
        time.sleep(0.01)
"""


@pytest.fixture
def registry(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gui-plugins")
    name = f"ws_gui_plugin_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(textwrap.dedent(PLUGIN))
    sys.path.insert(0, str(folder))  # spawned workers inherit sys.path
    importlib.invalidate_caches()
    from workstation.plugins.manager import load_registry

    yield load_registry([importlib.import_module(name)])
    sys.path.remove(str(folder))


@pytest.fixture
def window(qtbot, synthetic_ct_volume, workstation_store, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(workstation_store, settings=settings, with_browser=False)
    qtbot.addWidget(window)
    window.show()
    window.show_volume(synthetic_ct_volume, {"modality": "CT"})
    qtbot.waitExposed(window)
    qtbot.wait(50)  # first paint of the window done before anything is measured
    yield window
    if window.jobs_panel is not None:
        window.jobs_panel.shutdown()


def test_menu_offers_only_analyses_that_fit_the_selection(window, registry):
    menu = QMenu()
    fill_analyses_menu(window, menu, registry)
    enabled = {a.text(): a.isEnabled() for a in menu.actions()}
    assert enabled["Busy threshold (gui.busy)"] is True
    assert enabled["Records only (gui.records)"] is False  # no patient chosen


def test_parameter_form_is_generated_from_the_declarations(qtbot, registry):
    spec = registry.analysis("gui.busy").spec
    dialog = ParameterDialog(spec)
    qtbot.addWidget(dialog)
    lower = dialog.editors["lower"]
    assert isinstance(lower, QDoubleSpinBox)
    assert (lower.minimum(), lower.maximum(), lower.value()) == (-1000, 3000, 100.0)
    assert lower.toolTip() == "voxels above this are labelled"
    assert isinstance(dialog.editors["smooth"], QCheckBox)
    assert isinstance(dialog.editors["mode"], QComboBox)
    lower.setValue(5000)  # clamped to the declared range
    assert dialog.values() == {"lower": 3000.0, "smooth": False, "mode": "fast"}
    assert [dialog.device.itemText(i) for i in range(dialog.device.count())] == [
        "auto",
        "cpu",
        "cuda",
    ]


def test_analysis_runs_without_stalling_the_ui_and_comes_back_as_an_overlay(
    qtbot, window, registry
):
    panel = ensure_jobs_panel(window, registry)
    panel.runner.warm_up()  # the first worker start is not part of the run
    qtbot.wait(50)  # the jobs dock's first layout and paint
    gaps: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.elapsed()]

    def tick():
        now = clock.elapsed()
        gaps.append(now - last[0])
        last[0] = now

    probe = QTimer()
    probe.setInterval(10)
    probe.timeout.connect(tick)
    probe.start()
    with qtbot.waitSignal(panel.finished, timeout=60_000) as blocker:
        start(window, "gui.busy", {"lower": 200.0}, "cpu", registry)
        assert panel.running()
    probe.stop()
    outcome = blocker.args[0]
    assert outcome.outcome == "succeeded", outcome.error
    assert len(gaps) > 20
    assert max(gaps) < 100, f"UI stalled {max(gaps)} ms while the analysis ran"
    overlay = window.model.overlays[-1]
    assert overlay.name == "busy mask"
    expected = (window.model.volume.array > 200).sum() * np.prod(window.model.volume.spacing) / 1000
    assert overlay.legend[0].volume_ml == pytest.approx(expected)
    assert "succeeded" in panel.history.item(0).text()


def test_a_running_analysis_can_be_cancelled(qtbot, window, registry):
    panel = ensure_jobs_panel(window, registry)
    with qtbot.waitSignal(panel.finished, timeout=60_000) as blocker:
        start(window, "gui.forever", {}, "cpu", registry)
        qtbot.waitUntil(lambda: panel.status.text() == "started", timeout=30_000)
        began = time.monotonic()
        panel.cancel_button.click()
    assert blocker.args[0].outcome == "cancelled"
    assert time.monotonic() - began < 30
    assert "cancelled" in panel.history.item(0).text()
    assert not panel.cancel_button.isEnabled()


def test_the_jobs_panel_runs_with_the_chosen_weights_into_an_output_folder(
    qtbot, window, registry, tmp_path
):
    """What the form's Weights choice and a generating analysis's results folder rely on: the
    weights reach the analysis, and the run record and run.json name the folder and weights."""
    import hashlib
    import json

    from workstation.plugins.run_store import RunStore

    weights = tmp_path / "mine.pt"
    weights.write_text("weights the user trained")
    out_dir = tmp_path / "results" / "run"
    panel = ensure_jobs_panel(window, registry)
    with qtbot.waitSignal(panel.finished, timeout=60_000) as blocker:
        start(window, "gui.weighted", {}, "cpu", registry, weights=weights, out_dir=out_dir)
    outcome = blocker.args[0]
    assert outcome.outcome == "succeeded", outcome.error
    assert outcome.results[0].text == "weights the user trained"
    assert (outcome.weights, outcome.demo_weights) == (str(weights), False)
    run = json.loads((out_dir / "run.json").read_text())
    assert run["weights"]["path"] == str(weights)
    assert run["weights"]["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    with RunStore(window.store_dir) as runs:
        assert runs.get(outcome.run_id).out_dir == str(out_dir)


def test_the_form_offers_weights_only_for_an_analysis_with_a_model(qtbot, registry, tmp_path):
    plain = ParameterDialog(registry.analysis("gui.busy").spec)
    qtbot.addWidget(plain)
    assert plain.weights is None and plain.weights_path() is None
    chosen = tmp_path / "chosen.pt"
    chosen.write_bytes(b"x")
    dialog = ParameterDialog(registry.analysis("gui.weighted").spec, weights=chosen)
    qtbot.addWidget(dialog)
    assert dialog.weights_path() == str(chosen)
    dialog.weights.setCurrentIndex(0)  # the analysis's own
    assert dialog.weights_path() is None


def test_a_weights_folder_chosen_in_the_form_is_what_the_run_gets(
    qtbot, window, registry, tmp_path, monkeypatch
):
    """A MONAI bundle is a folder: "Other folder..." asks for one and the run gets it."""
    from PySide6.QtWidgets import QApplication, QFileDialog

    from workstation.gui.analyses import start_from_dialog
    from workstation.gui.parameter_form import OTHER_FOLDER

    bundle = tmp_path / "my_bundle"
    (bundle / "configs").mkdir(parents=True)
    (bundle / "models").mkdir()
    (bundle / "models" / "model.pt").write_bytes(b"bundle weights")
    asked = []
    monkeypatch.setattr(
        QFileDialog, "getExistingDirectory", lambda *a, **k: asked.append(a) or str(bundle)
    )
    seen = {}

    def fill_form():
        form = QApplication.activeModalWidget()
        assert isinstance(form, ParameterDialog)
        form.weights.setCurrentIndex(form.weights.findData(OTHER_FOLDER))
        seen["choice"] = (form.weights.currentText(), form.weights_path())
        form.device.setCurrentText("cpu")
        form.accept()

    panel = ensure_jobs_panel(window, registry)
    with qtbot.waitSignal(panel.finished, timeout=60_000) as blocker:
        QTimer.singleShot(0, fill_form)
        start_from_dialog(window, registry.analysis("gui.weighted").spec, registry)
    assert len(asked) == 1
    assert seen["choice"] == ("Folder: my_bundle", str(bundle))
    outcome = blocker.args[0]
    assert outcome.outcome == "succeeded", outcome.error
    assert outcome.weights == str(bundle)
    assert outcome.results[0].text == "folder: configs,models"
