"""Generating from a model the user trained: the form's Weights choice lists the shipped demo
weights (the default), the models trained in this store and any file ("Other..."); after a
training, "Generate from this model" opens the form with that model chosen, and its series are
written to a results folder of the store, indexed, marked synthetic and never called DEMO."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")
pytest.importorskip("workstation_monai_gan")

import pydicom
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from workstation.gui.analyses import open_training_dialog
from workstation.gui.browser import SERIES_ROLE
from workstation.gui.main_window import MainWindow
from workstation.gui.parameter_form import OTHER, OTHER_FOLDER, ParameterDialog, trained_models

pytestmark = pytest.mark.gui

SPACING = (5.4, 5.4, 5.0)
CT_UID = "1.2.826.0.1.7101"


@pytest.fixture(scope="module")
def registry():
    from workstation.plugins.manager import load_registry

    return load_registry()


@pytest.fixture
def gan_spec(registry):
    return registry.analysis("gan.generate").spec


def fake_model(store: Path, folder: str, analysis_id: str | None, epoch: int = 3) -> Path:
    """A model folder as `workstation train` leaves it (model.pt, training.json, metrics)."""
    model_dir = store / "models" / folder
    model_dir.mkdir(parents=True)
    (model_dir / "model.pt").write_bytes(b"weights")
    if analysis_id is not None:
        (model_dir / "training.json").write_text(json.dumps({"analysis_id": analysis_id}))
    (model_dir / "metrics.json").write_text(json.dumps([{"epoch": epoch}]))
    return model_dir / "model.pt"


def choices(dialog: ParameterDialog) -> list[tuple[str, str | None]]:
    combo = dialog.weights
    return [(combo.itemText(i), combo.itemData(i)) for i in range(combo.count())]


def test_the_weights_choice_lists_shipped_trained_and_other(
    qtbot, gan_spec, workstation_store, tmp_path
):
    mine = fake_model(workstation_store, "gan.generate", None)  # the dialog's default folder
    named = fake_model(workstation_store, "chest-ct", "gan.generate", epoch=12)
    fake_model(workstation_store, "classifier", "monai.classify")  # another analysis's model
    (workstation_store / "models" / "unfinished").mkdir()  # no model.pt yet
    assert trained_models(workstation_store, "gan.generate") == [named, mine]

    dialog = ParameterDialog(gan_spec, store_dir=workstation_store)
    qtbot.addWidget(dialog)
    assert choices(dialog) == [
        ("Shipped demo weights", None),
        ("Trained here: chest-ct, epoch 12", str(named)),
        ("Trained here: gan.generate, epoch 3", str(mine)),
        (OTHER, OTHER),
        (OTHER_FOLDER, OTHER_FOLDER),
    ]
    assert dialog.weights.currentIndex() == 0 and dialog.weights_path() is None
    dialog.weights.setCurrentIndex(1)
    assert dialog.weights_path() == str(named)

    # "Other...": the file picked is added and chosen; giving none keeps the last choice.
    picked = tmp_path / "elsewhere" / "gan.pt"
    picked.parent.mkdir()
    picked.write_bytes(b"w")
    dialog.weights.pick_file = lambda: ""
    dialog.weights.setCurrentIndex(dialog.weights.findData(OTHER))
    assert dialog.weights_path() == str(named)
    dialog.weights.pick_file = lambda: str(picked)
    dialog.weights.setCurrentIndex(dialog.weights.findData(OTHER))
    assert dialog.weights_path() == str(picked)
    assert dialog.weights.currentText() == "File: gan.pt"
    assert choices(dialog)[-2:] == [(OTHER, OTHER), (OTHER_FOLDER, OTHER_FOLDER)]

    # The shipped file picked by its path is the shipped choice (its results say DEMO).
    from workstation_monai_gan.plugin import DEMO_WEIGHTS

    dialog.weights.pick_file = lambda: DEMO_WEIGHTS
    dialog.weights.setCurrentIndex(dialog.weights.findData(OTHER))
    assert dialog.weights.currentIndex() == 0 and dialog.weights_path() is None

    # Opened for a model: that model is chosen first.
    again = ParameterDialog(gan_spec, store_dir=workstation_store, weights=mine)
    qtbot.addWidget(again)
    assert again.weights_path() == str(mine)


@pytest.fixture
def window(qtbot, workstation_store, tmp_path):
    from workstation.dicom.index import index_paths
    from workstation.testing.phantoms import ct_phantom, write_volume_series

    hu, _ = ct_phantom((40, 48, 48), SPACING, seed=1)
    write_volume_series(
        tmp_path / "ct", hu, spacing=SPACING, series_uid=CT_UID, series_description="CT phantom"
    )
    index_paths(workstation_store, [tmp_path / "ct"])
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(workstation_store, settings=settings)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    yield window
    for dialog in window.__dict__.get("training_dialogs", {}).values():
        dialog.shutdown()
    if window.jobs_panel is not None:
        window.jobs_panel.shutdown()


def series_rows(window) -> dict[str, object]:
    tree = window.browser.tree
    rows, stack = {}, [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    while stack:
        item = stack.pop()
        if item.data(0, SERIES_ROLE):
            rows[item.text(2)] = item
        stack.extend(item.child(i) for i in range(item.childCount()))
    return rows


def test_generate_from_the_model_just_trained(qtbot, window, registry, gan_spec):
    store = window.store_dir
    dialog = open_training_dialog(window, gan_spec, registry)
    assert dialog.picker.checked() == [] and not dialog.generate_button.isVisible()
    dialog.picker.set_checked([CT_UID])
    dialog.epochs.setValue(1)
    dialog.device.setCurrentText("cpu")
    with qtbot.waitSignal(dialog.finished_training, timeout=120_000) as blocker:
        dialog.start_button.click()
    trained = blocker.args[0]
    assert trained.ok, trained.error
    weights = store / "models" / "gan.generate" / "model.pt"
    assert dialog.generate_button.isVisible() and dialog.generate_button.isEnabled()
    assert dialog.generate_button.text() == "Generate from this model"
    assert "Generate from this model uses it" in dialog.message.text()

    seen = {}

    def fill_form():
        form = QApplication.activeModalWidget()
        assert isinstance(form, ParameterDialog)
        seen["weights"] = (form.weights.currentText(), form.weights_path())
        form.editors["count"].setValue(2)
        form.editors["seed"].setValue(7)
        form.device.setCurrentText("cpu")
        form.accept()

    QTimer.singleShot(0, fill_form)
    dialog.generate_button.click()  # the form opens modally; fill_form answers it
    assert seen["weights"] == ("Trained here: gan.generate, epoch 1", str(weights))
    panel = window.jobs_panel
    assert panel is not None and panel.running()
    with qtbot.waitSignal(panel.finished, timeout=120_000) as blocker:
        pass
    outcome = blocker.args[0]
    assert outcome.outcome == "succeeded", outcome.error
    assert (outcome.weights, outcome.demo_weights) == (str(weights), False)

    # The run's folder is in the store and named by the run record; run.json names the weights.
    out_dir = Path(outcome.out_dir)
    assert out_dir.parent == store / "results" / "gan.generate"
    from workstation.plugins.run_store import RunStore

    with RunStore(store) as runs:
        assert runs.get(outcome.run_id).out_dir == str(out_dir)
    run = json.loads((out_dir / "run.json").read_text())
    assert run["weights"] == {
        "path": str(weights),
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "demo": False,
    }

    # Indexed and listed, marked synthetic, and never called DEMO.
    qtbot.waitUntil(lambda: len(series_rows(window)) == 2, timeout=60_000)
    generated = next(item for text, item in series_rows(window).items() if text != "CT phantom")
    assert generated.text(2) == "[SYNTHETIC] SYNTHETIC GAN CT seed 7"
    assert "2 images" in window.statusBar().currentMessage()
    files = sorted(out_dir.rglob("*.dcm"))
    assert len(files) == 2
    ds = pydicom.dcmread(files[0])
    assert ds.SeriesDescription == "SYNTHETIC GAN CT seed 7"
    assert "DEMO" not in str(ds.get("DerivationDescription", "")).upper()
    assert list(ds.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    window.open_series(generated.data(0, SERIES_ROLE))
    assert window.model.volume.array.shape == (2, 64, 64)


def test_a_third_party_trainer_writing_model_path_is_offered_under_weights(
    qtbot, workstation_store, synthetic_ct_volume
):
    """The model file is part of the training API (`MODEL_FILE`, `TrainContext.model_path`):
    a trainer that writes it, whatever plugin it comes from, gets its model listed under
    Weights in the analysis's form."""
    from workstation.plugins.api import AnalysisSpec
    from workstation.plugins.training import MODEL_FILE, train_analysis

    spec = AnalysisSpec(
        id="other.maker",
        title="Another maker",
        version="1.0",
        entry=f"{__name__}:_never_run",
        train_entry=f"{__name__}:_third_party_train",
        returns=["report"],
        weights="declared.pt",
    )
    model_dir = workstation_store / "models" / "mine"
    outcome = train_analysis(spec, [synthetic_ct_volume], model_dir, epochs=1, device="cpu")
    assert outcome.ok, outcome.error
    assert (model_dir / MODEL_FILE).read_bytes() == b"third-party weights"
    assert trained_models(workstation_store, "other.maker") == [model_dir / MODEL_FILE]
    dialog = ParameterDialog(spec, store_dir=workstation_store)
    qtbot.addWidget(dialog)
    assert ("Trained here: mine, epoch 1", str(model_dir / MODEL_FILE)) in choices(dialog)


def _never_run(ctx):  # pragma: no cover - the analysis entry; only training runs here
    raise AssertionError("not run")


def _third_party_train(ctx) -> None:
    """A trainer from another plugin: writes where the training API says, not a fixed name."""
    ctx.log_epoch(1, {"loss": 0.5})
    ctx.model_path.write_bytes(b"third-party weights")
