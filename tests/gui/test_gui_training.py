"""Training from the GUI: the Analyses menu offers "Train ..." for trainable analyses with the
browser's series ticked; the training window shows loss curves growing a point per epoch and the
samples grid; Cancel keeps the last checkpoint and says where, and Resume carries on from it;
bad requests are refused, in words, before anything is trained."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")
pytest.importorskip("workstation_monai_gan")

from PySide6.QtCore import QSettings
from PySide6.QtGui import QImage

from workstation.gui.analyses import fill_analyses_menu
from workstation.gui.browser import SERIES_ROLE
from workstation.gui.main_window import MainWindow
from workstation.gui.training_dialog import TrainingDialog

pytestmark = pytest.mark.gui

SPACING = (5.4, 5.4, 5.0)
TRAIN_ACTION = "Train Synthetic images (GAN) (gan.generate)..."
SERIES = {  # uid: (modality, slices)
    "1.2.826.0.1.7001": ("CT", 20),
    "1.2.826.0.1.7002": ("CT", 20),
    "1.2.826.0.1.7003": ("CT", 10),
    "1.2.826.0.1.7004": ("MR", 20),
}
CT_PAIR = ["1.2.826.0.1.7001", "1.2.826.0.1.7002"]


@pytest.fixture(scope="module")
def dicom_folder(tmp_path_factory) -> Path:
    """Small phantom series: two CT of 20 slices (enough together), a short CT, an MR."""
    from workstation.testing.phantoms import ct_phantom, write_volume_series

    root = tmp_path_factory.mktemp("training-series")
    for number, (uid, (modality, slices)) in enumerate(SERIES.items(), start=1):
        hu, _ = ct_phantom((slices, 48, 48), SPACING, seed=number)
        values = hu if modality == "CT" else np.clip(hu + 1000, 0, 4000)
        write_volume_series(
            root / uid,
            values,
            spacing=SPACING,
            modality=modality,
            series_uid=uid,
            series_number=number,
            series_description=f"{modality} phantom {number}",
        )
    return root


@pytest.fixture
def store(workstation_store, dicom_folder) -> Path:
    from workstation.dicom.index import index_paths

    index_paths(workstation_store, [dicom_folder])
    return workstation_store


@pytest.fixture(scope="module")
def registry():
    from workstation.plugins.manager import load_registry

    return load_registry()


@pytest.fixture
def open_dialog(qtbot, store, registry):
    dialogs = []

    def make(ticked=CT_PAIR) -> TrainingDialog:
        spec = registry.analysis("gan.generate").spec
        dialog = TrainingDialog(spec, store, ticked)
        qtbot.addWidget(dialog)
        dialog.device.setCurrentText("cpu")
        dialog.show()
        qtbot.waitExposed(dialog)
        dialogs.append(dialog)
        return dialog

    yield make
    for dialog in dialogs:
        dialog.shutdown()


def run_to_end(qtbot, dialog: TrainingDialog, timeout: int = 120_000):
    with qtbot.waitSignal(dialog.finished_training, timeout=timeout) as blocker:
        dialog.start_button.click()
    return blocker.args[0]


def test_train_is_offered_in_the_menu_with_the_browser_selection_ticked(
    qtbot, store, registry, tmp_path
):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(store, settings=settings)
    qtbot.addWidget(window)
    window.show()
    tree = window.browser.tree
    items = {}
    stack = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    while stack:
        item = stack.pop()
        if item.data(0, SERIES_ROLE):
            items[item.data(0, SERIES_ROLE)] = item
        stack.extend(item.child(i) for i in range(item.childCount()))
    tree.setCurrentItem(items["1.2.826.0.1.7002"])

    fill_analyses_menu(window, window.analyses_menu, registry)
    actions = {a.text(): a for a in window.analyses_menu.actions()}
    assert actions[TRAIN_ACTION].isEnabled()
    actions[TRAIN_ACTION].trigger()
    dialog = window.training_dialogs["gan.generate"]
    qtbot.waitExposed(dialog)
    assert dialog.isVisible() and not dialog.isModal()
    assert dialog.picker.checked() == ["1.2.826.0.1.7002"]
    assert sorted(dialog.picker.series_ids()) == sorted(SERIES)
    shown = [dialog.picker.item(row).text() for row in range(dialog.picker.count())]
    assert "[SYNTHETIC] CT #2 48x48 x 20: SYNTHETIC CT phantom 2" in shown  # phantoms say so
    assert dialog.model_dir.text() == str(store / "models" / "gan.generate")
    assert dialog.start_button.isEnabled()
    dialog.picker.set_checked([])
    assert not dialog.start_button.isEnabled()  # nothing ticked, nothing to start


def test_train_is_disabled_on_an_empty_store(qtbot, workstation_store, registry, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(workstation_store, settings=settings)
    qtbot.addWidget(window)
    fill_analyses_menu(window, window.analyses_menu, registry)
    action = {a.text(): a for a in window.analyses_menu.actions()}[TRAIN_ACTION]
    assert not action.isEnabled()
    assert "import a folder first" in action.toolTip()


def test_curves_and_samples_each_epoch_cancel_keeps_checkpoint_resume_continues(
    qtbot, open_dialog, tmp_path, shots_dir
):
    import torch

    dialog = open_dialog()
    model_dir = tmp_path / "model"
    dialog.model_dir.setText(str(model_dir))
    assert not dialog.resume.isChecked()
    dialog.epochs.setValue(200)  # far more than the test waits for: Cancel ends it
    dialog.seed.setValue(3)
    with qtbot.waitSignal(dialog.finished_training, timeout=120_000) as blocker:
        dialog.start_button.click()
        assert dialog.running() and dialog.cancel_button.isEnabled()
        assert not dialog.start_button.isEnabled() and not dialog.picker.isEnabled()
        qtbot.waitUntil(
            lambda: len(dialog.monitor.points("generator_loss")[0]) >= 2, timeout=120_000
        )
        epochs, losses = dialog.monitor.points("generator_loss")
        assert epochs[:2] == [1, 2]
        assert all(np.isfinite(losses)) and len(dialog.monitor.points("discriminator_loss")[0])
        assert not dialog.monitor.samples_pixmap.isNull()
        assert "Samples after epoch" in dialog.monitor.samples_caption.text()
        assert 0 < dialog.bar.value() < dialog.bar.maximum()
        dialog.grab().save(str(shots_dir / "gan-training.png"))
        dialog.cancel_button.click()
    outcome = blocker.args[0]
    assert outcome.outcome == "cancelled"
    kept = outcome.epochs_done
    assert 2 <= kept < 200
    state = torch.load(model_dir / "checkpoint.pt", weights_only=True, map_location="cpu")
    assert state["epoch"] == kept
    message = dialog.message.text()
    assert f"The last complete epoch ({kept}) is kept in {model_dir / 'checkpoint.pt'}" in message
    assert "tick Resume" in message
    # What the user sees: the grid on screen is samples.png, drawn at a whole magnification.
    on_disk = QImage(str(model_dir / "samples.png"))
    shown = dialog.monitor.samples.pixmap().toImage()
    factor = shown.width() // on_disk.width()
    assert factor >= 1 and shown.height() == on_disk.height() * factor
    assert shown.convertToFormat(QImage.Format.Format_Grayscale8).scaled(
        on_disk.size()
    ) == on_disk.convertToFormat(QImage.Format.Format_Grayscale8)
    pixels = np.frombuffer(on_disk.constBits(), np.uint8)
    assert pixels.std() > 5  # images, not a blank grid

    # The folder now holds a checkpoint: Resume is ticked; Epochs stays the total asked for.
    assert dialog.resume.isChecked() and dialog.epochs.value() == 200
    assert f"checkpoint at epoch {kept}" in dialog.folder_hint.text()
    dialog.epochs.setValue(kept + 1)
    outcome = run_to_end(qtbot, dialog)
    assert outcome.outcome == "succeeded", outcome.error
    assert f"resuming from epoch {kept}" in dialog.log.toPlainText()
    epochs, _ = dialog.monitor.points("generator_loss")
    assert epochs == list(range(1, kept + 2))  # earlier epochs kept, one more added
    state = torch.load(model_dir / "checkpoint.pt", weights_only=True, map_location="cpu")
    assert state["epoch"] == kept + 1
    assert f"Trained to epoch {kept + 1}" in dialog.message.text()
    assert str(model_dir / "model.pt") in dialog.message.text()
    assert dialog.bar.value() == dialog.bar.maximum()


def test_a_training_process_that_dies_leaves_the_window_and_the_last_checkpoint(
    qtbot, open_dialog, tmp_path
):
    import os
    import signal

    dialog = open_dialog()
    model_dir = tmp_path / "model"
    dialog.model_dir.setText(str(model_dir))
    dialog.epochs.setValue(200)
    with qtbot.waitSignal(dialog.finished_training, timeout=120_000) as blocker:
        dialog.start_button.click()
        qtbot.waitUntil(lambda: dialog.monitor.points("generator_loss")[0] != [], timeout=120_000)
        os.kill(dialog._job.process.pid, signal.SIGKILL)  # a native crash, an out-of-memory kill
    outcome = blocker.args[0]
    assert outcome.outcome == "failed"
    kept = outcome.epochs_done
    assert kept >= 1 and (model_dir / "checkpoint.pt").is_file()
    message = dialog.message.text()
    assert "Training failed: the training process died (signal 9, SIGKILL)" in message
    assert f"The last complete epoch ({kept}) is kept in {model_dir / 'checkpoint.pt'}" in message
    assert dialog.isVisible() and dialog.start_button.isEnabled()
    assert dialog.resume.isChecked()  # ready to carry on from the kept epoch


@pytest.mark.parametrize(
    ("ticked", "epochs", "words"),
    [
        (["1.2.826.0.1.7003"], 2, ["Not started: only 10 slices in the chosen series"]),
        (
            ["1.2.826.0.1.7001", "1.2.826.0.1.7004"],
            2,
            [
                "Not started: the series mix modalities (",
                "CT: series 1.2.826.0.1.7001",
                "MR: series 1.2.826.0.1.7004",
            ],
        ),
        (CT_PAIR, 5000, ["is too much to train on the CPU (no GPU here"]),
    ],
    ids=["too-few-slices", "mixed-modalities", "too-big-for-cpu"],
)
def test_bad_requests_are_refused_in_words_before_training(
    qtbot, open_dialog, tmp_path, shots_dir, ticked, epochs, words
):
    dialog = open_dialog(ticked)
    model_dir = tmp_path / "model"
    dialog.model_dir.setText(str(model_dir))
    dialog.epochs.setValue(epochs)
    outcome = run_to_end(qtbot, dialog)
    assert outcome.outcome == "refused"
    for phrase in words:
        assert phrase in dialog.message.text()
    assert dialog.monitor.points("generator_loss") == ([], [])
    assert not (model_dir / "checkpoint.pt").exists()
    assert dialog.start_button.isEnabled() and not dialog.cancel_button.isEnabled()
    dialog.grab().save(str(shots_dir / f"gan-training-refused-{len(ticked)}-{epochs}.png"))


def test_an_existing_checkpoint_is_not_overwritten_without_resume(qtbot, open_dialog, tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "checkpoint.pt").write_bytes(b"kept")
    dialog = open_dialog()
    dialog.model_dir.setText(str(model_dir))
    assert dialog.resume.isChecked()  # the folder has a checkpoint: Resume is the default
    dialog.resume.setChecked(False)
    outcome = run_to_end(qtbot, dialog)
    assert outcome.outcome == "refused"
    assert "already holds a checkpoint; tick Resume to carry on from it" in dialog.message.text()
    assert (model_dir / "checkpoint.pt").read_bytes() == b"kept"


def test_resume_with_nothing_to_resume_is_refused_in_the_dialogs_words(
    qtbot, open_dialog, tmp_path
):
    model_dir = tmp_path / "empty"
    dialog = open_dialog()
    dialog.model_dir.setText(str(model_dir))
    dialog.resume.setChecked(True)
    outcome = run_to_end(qtbot, dialog)
    assert outcome.outcome == "refused" and outcome.reason == "no_checkpoint"
    assert dialog.message.text() == (
        f"Not started: {model_dir} has no checkpoint.pt to resume from; "
        "untick Resume to start a new model there."
    )
    assert not model_dir.exists()  # a refused request leaves nothing behind


def test_every_refusal_is_said_without_command_line_flags():
    from workstation.gui.training_dialog import GUI_HINTS, refusal_text
    from workstation.plugins import training
    from workstation.plugins.training import CLI_HINTS, TrainingRefused, TrainOutcome

    codes = {v for k, v in vars(training).items() if k.startswith("REFUSED_")}
    assert set(CLI_HINTS) == set(GUI_HINTS) == codes - {training.REFUSED_INPUT}
    for code in codes:
        outcome = TrainOutcome("gan.generate", "refused", "m").refuse(
            TrainingRefused("the series cannot be used", code)
        )
        text = refusal_text(outcome)
        assert text.startswith("the series cannot be used") and "--" not in text
    epochs = TrainOutcome("gan.generate", "refused", "m").refuse(
        TrainingRefused(
            "m/checkpoint.pt is already at epoch 4; ask for more than 4 epochs", "epochs"
        )
    )
    assert refusal_text(epochs) == (
        "m/checkpoint.pt is already at epoch 4; ask for more than 4 epochs; "
        "Epochs is the total, counting the epochs already trained."
    )
