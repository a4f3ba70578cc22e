"""The training window: choose series, a model folder, epochs, seed, resume and device; then
watch the job (progress, loss curves, samples each epoch) and cancel it at any time, keeping the
last complete checkpoint. The same `training.train()` as `workstation train` does the work, in a
child process watched from a worker thread (`training_job`), so the rest of the workstation
stays responsive while a model trains and survives a trainer that crashes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QThread, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workstation.gui.parameter_form import DEVICES
from workstation.gui.training_job import TrainJob
from workstation.gui.training_monitor import TrainingMonitor
from workstation.gui.training_picker import SeriesPicker
from workstation.plugins.training import MODEL_FILE

MESSAGE_COLOURS = {  # mid tones: readable on the dark theme and on a light desktop
    "succeeded": "#3fae4f",
    "refused": "#e0483e",
    "failed": "#e0483e",
    "cancelled": "#d98c00",
}

GUI_HINTS = {  # what to do about each refusal (training.REFUSED_*), in this window's words
    "no_series": "tick series in the list",
    "epochs": "Epochs is the total, counting the epochs already trained",
    "checkpoint_exists": "tick Resume to carry on from it, or choose another folder",
    "no_checkpoint": "untick Resume to start a new model there",
    "device": "choose another Device",
}


def refusal_text(outcome: Any) -> str:
    """A refused `TrainOutcome` said with the dialog's labels: what is wrong, then what to do
    about it here (never the command line's flags)."""
    hint = GUI_HINTS.get(outcome.reason or "", "")
    text = (outcome.error or "no reason given").rstrip(".")
    return f"{text}; {hint}." if hint else f"{text}."


def checkpoint_epoch(model_dir: Path) -> int | None:
    """The last complete epoch kept in `model_dir`, or None when it holds no checkpoint."""
    from workstation.plugins.training import CHECKPOINT_FILE, read_metrics

    if not (model_dir / CHECKPOINT_FILE).is_file():
        return None
    try:
        rows = read_metrics(model_dir)
    except (OSError, ValueError):
        rows = []
    return int(rows[-1]["epoch"]) if rows else 0


def default_model_dir(store_dir: Path, analysis_id: str) -> Path:
    return store_dir / "models" / analysis_id


class TrainingDialog(QDialog):
    """One trainable analysis (`spec`, an `AnalysisSpec` with a `train_entry`) trained on
    series of `store_dir`; `ticked` are the series ticked at first.

    `finished_training(TrainOutcome)` is emitted when a job ends, however it ends;
    `generate_requested(weights_path)` when, after a successful training, the user asks to run
    the analysis with the model just trained (the main window opens its form).
    """

    finished_training = Signal(object)
    generate_requested = Signal(str)

    def __init__(
        self,
        spec: Any,
        store_dir: str | os.PathLike[str],
        ticked: Iterable[str] = (),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.spec, self.store_dir = spec, Path(store_dir)
        self.setWindowTitle(f"Train {spec.title} ({spec.id} {spec.version})")
        self.setModal(False)
        self.resize(1180, 720)
        self._thread: QThread | None = None
        self._job: TrainJob | None = None
        self._close_when_done = False
        self.trained_weights: Path | None = None  # MODEL_FILE of the last successful training
        self._build(ticked)
        self._grey_when_disabled()
        QApplication.instance().aboutToQuit.connect(self.shutdown)
        if parent is not None:  # the main window closing ends the job, keeping its checkpoint
            parent.installEventFilter(self)

    # --- layout ---------------------------------------------------------------------------
    def _build(self, ticked: Iterable[str]) -> None:
        self.picker = SeriesPicker()
        self.picker.load(self.store_dir, ticked)
        self.picker.selection_changed.connect(self._update_buttons)
        self.model_dir = QLineEdit(str(default_model_dir(self.store_dir, self.spec.id)))
        self.model_dir.textChanged.connect(self._update_folder_hint)
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.model_dir, 1)
        folder_row.addWidget(browse)
        self.folder_hint = QLabel()
        self.folder_hint.setWordWrap(True)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 100_000)
        self.epochs.setValue(10)
        self.epochs.setToolTip("Total epochs; a resumed model counts the epochs already done.")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("The same seed, series and epochs give the same model.")
        self.resume = QCheckBox("Resume from the folder's last checkpoint")
        self.device = QComboBox()
        self.device.addItems(list(DEVICES))
        self.device.setToolTip(f"this analysis {self.spec.device.replace('_', ' ')}")
        form = QFormLayout()
        form.addRow("Model folder", folder_row)
        form.addRow("", self.folder_hint)
        form.addRow("Epochs", self.epochs)
        form.addRow("Seed", self.seed)
        form.addRow("", self.resume)
        form.addRow("Device", self.device)
        self.start_button = QPushButton("Start training")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel training")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        close_button = QPushButton("Close")
        close_button.clicked.connect(self.close)
        generates = "generated_series" in {str(kind) for kind in self.spec.returns}
        self.generate_button = QPushButton(
            "Generate from this model" if generates else "Run with this model"
        )
        self.generate_button.setToolTip("opens the analysis's form with the model just trained")
        self.generate_button.setVisible(False)  # offered once a training has succeeded
        self.generate_button.clicked.connect(self._generate)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.generate_button)
        buttons.addStretch(1)
        buttons.addWidget(close_button)
        self.form_widgets: list[QWidget] = [
            self.picker,
            self.model_dir,
            browse,
            self.epochs,
            self.seed,
            self.resume,
            self.device,
        ]

        left = QVBoxLayout()
        left.addWidget(QLabel("Series to train on"))
        left.addWidget(self.picker, 1)
        left.addLayout(form)
        left.addLayout(buttons)

        self.message = QLabel()
        self.message.setWordWrap(True)
        bold = self.message.font()
        bold.setBold(True)
        self.message.setFont(bold)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status = QLabel("not started")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setValue(0)
        self.bar.setTextVisible(False)
        self.monitor = TrainingMonitor()
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(1000)
        self.log.setMaximumHeight(110)
        right = QVBoxLayout()
        right.addWidget(self.message)
        right.addWidget(self.status)
        right.addWidget(self.bar)
        right.addWidget(self.monitor, 1)
        right.addWidget(self.log)

        layout = QHBoxLayout(self)
        left_widget = QWidget()
        left_widget.setLayout(left)
        left_widget.setMaximumWidth(470)
        layout.addWidget(left_widget)
        layout.addLayout(right, 1)
        self._update_folder_hint()
        if self.picker.problem:
            self.show_message(self.picker.problem, "refused")
        elif not self.picker.count():
            self.show_message("The store has no series: import a folder first.", "info")

    def _grey_when_disabled(self) -> None:
        """Greyed-out controls while a job runs, whatever the theme's disabled colours are."""
        palette = self.palette()
        for role in (
            QPalette.ColorRole.WindowText,
            QPalette.ColorRole.Text,
            QPalette.ColorRole.ButtonText,
        ):
            palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(128, 128, 128))
        self.setPalette(palette)

    # --- state ----------------------------------------------------------------------------
    def running(self) -> bool:
        return self._thread is not None

    def show_message(self, text: str, kind: str = "info") -> None:
        colour = MESSAGE_COLOURS.get(kind)
        self.message.setStyleSheet(f"color: {colour};" if colour else "")
        self.message.setText(text)
        # A wrapped label in a fixed-size window does not grow by itself: give it the lines.
        self.message.ensurePolished()
        self.message.setMinimumHeight(self.message.heightForWidth(max(self.message.width(), 500)))
        self.layout().activate()

    def _update_buttons(self) -> None:
        running = self.running()
        self.start_button.setEnabled(not running and bool(self.picker.checked()))
        self.start_button.setToolTip("" if self.picker.checked() else "tick series to train on")
        self.cancel_button.setEnabled(running)
        self.generate_button.setEnabled(not running)
        for widget in self.form_widgets:
            widget.setEnabled(not running)

    def _update_folder_hint(self) -> None:
        text = self.model_dir.text().strip()
        epoch = checkpoint_epoch(Path(text)) if text else None
        if not text:
            hint = "Choose a folder for the model."
        elif epoch is None:
            hint = "No checkpoint here: a new model starts from scratch."
        else:
            hint = (
                f"Holds a checkpoint at epoch {epoch}: Resume carries on from it "
                "(Epochs is the total, so ask for more)."
            )
            self.epochs.setValue(max(self.epochs.value(), epoch + 1))
        self.resume.setChecked(epoch is not None)
        self.folder_hint.setText(hint)
        self._update_buttons()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Model folder", self.model_dir.text())
        if folder:
            self.model_dir.setText(folder)

    # --- the job --------------------------------------------------------------------------
    def start(self) -> None:
        """Start training with what the form says; refusals come back in `message`."""
        if self.running():
            return
        series = self.picker.checked()
        folder = self.model_dir.text().strip()
        if not series:
            self.show_message("Tick at least one series to train on.", "refused")
            return
        if not folder:
            self.show_message("Choose a model folder.", "refused")
            return
        self.trained_weights = None
        self.generate_button.setVisible(False)
        self.monitor.clear()
        self.log.clear()
        self.bar.setValue(0)
        self.show_message(f"Training {len(series)} series into {folder} ...", "info")
        self._job = TrainJob(
            self.spec,
            self.store_dir,
            series,
            folder,
            epochs=self.epochs.value(),
            seed=self.seed.value(),
            resume=self.resume.isChecked(),
            device=self.device.currentText(),
        )
        self._thread = QThread()
        self._job.moveToThread(self._thread)
        self._thread.started.connect(self._job.run)
        self._job.progress.connect(self._on_progress)
        self._job.log.connect(self.log.appendPlainText)
        self._job.epoch_finished.connect(self.monitor.show_epoch)
        self._job.epoch_finished.connect(self._on_epoch)
        self._job.done.connect(self._on_done)
        self._update_buttons()
        self._thread.start()

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self.status.setText(self.status.text() + " (cancelling after this batch)")
            self.cancel_button.setEnabled(False)

    def _on_progress(self, fraction: float, message: str) -> None:
        self.bar.setValue(round(1000 * max(0.0, min(1.0, fraction))))
        if message:
            self.status.setText(message)

    def _on_epoch(self, rows: list, _samples: bytes) -> None:
        if rows:
            folder = Path(self.model_dir.text().strip())
            self.folder_hint.setText(
                f"Checkpoint saved after epoch {int(rows[-1]['epoch'])}: {folder / 'checkpoint.pt'}"
            )

    def _on_done(self, outcome: Any) -> None:
        self._stop_thread()
        self.show_message(self.describe(outcome), outcome.outcome)
        if outcome.traceback:
            self.log.appendPlainText(outcome.traceback.rstrip())
        self.status.setText(
            "not started"
            if outcome.outcome == "refused"
            else f"{outcome.outcome} after epoch {outcome.epochs_done}"
        )
        if outcome.ok:
            self.bar.setValue(1000)
            weights = Path(outcome.model_dir) / MODEL_FILE
            if weights.is_file():
                self.trained_weights = weights
                self.generate_button.setVisible(True)
        self._update_folder_hint()
        self.finished_training.emit(outcome)
        if self._close_when_done:
            self.close()

    def _generate(self) -> None:
        if self.trained_weights is not None and not self.running():
            self.generate_requested.emit(str(self.trained_weights))

    def describe(self, outcome: Any) -> str:
        """What happened, in plain words, and where the model or last checkpoint is."""
        folder = Path(outcome.model_dir)
        kept = checkpoint_epoch(folder)
        where = (
            f" The last complete epoch ({kept}) is kept in {folder / 'checkpoint.pt'}; "
            "tick Resume and start again to carry on."
            if kept
            else " No checkpoint was saved (no epoch had ended)."
        )
        if outcome.outcome == "succeeded":
            return (
                f"Trained to epoch {outcome.epochs_done} in {outcome.duration_s:.1f} s on "
                f"{outcome.device}. The model is in {folder / MODEL_FILE}: "
                f"{self.generate_button.text()} uses it, as does "
                f"`workstation run {outcome.analysis_id} --weights {folder / MODEL_FILE}`."
            )
        if outcome.outcome == "refused":
            return f"Not started: {refusal_text(outcome)}"
        if outcome.outcome == "cancelled":
            return "Cancelled." + where
        return f"Training failed: {(outcome.error or 'no reason given').rstrip('.')}." + where

    def _stop_thread(self) -> None:
        if self._thread is not None:
            self._thread.quit()
            self._thread.wait()
        self._thread, self._job = None, None

    SHUTDOWN_GRACE_S = 3.0
    """When the application quits, a job gets this long to end its batch after Cancel before
    its process is terminated, and killed `TrainJob.kill_wait_s` after that."""

    def shutdown(self, grace_s: float | None = None) -> None:
        """Cancel the job and wait a bounded time for it (the application is quitting): past
        `grace_s` (default `SHUTDOWN_GRACE_S`) and the job's SIGTERM wait, the training process
        is killed, so the window never hangs and no child is left behind. The last complete
        checkpoint stays."""
        job, thread = self._job, self._thread
        grace = self.SHUTDOWN_GRACE_S if grace_s is None else float(grace_s)
        if job is not None:
            job.cancel(grace_s=grace)
        if thread is None:
            return
        thread.quit()
        kill_wait = job.kill_wait_s if job is not None else 0.0
        if not thread.wait(round(1000 * (grace + kill_wait + 2.0))) and job is not None:
            job.kill()  # the watcher did not get to it in time
            thread.wait(10_000)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.parent() and event.type() == QEvent.Type.Close:
            self.shutdown()
        return False

    def closeEvent(self, event) -> None:
        if self.running():  # closes once the current batch ends and the checkpoint is whole
            self._close_when_done = True
            self.cancel()
            self.show_message("Cancelling: the window closes when the current batch ends.")
            event.ignore()
            return
        super().closeEvent(event)
