"""Generating synthetic images from the GUI: the GAN is offered with nothing selected, runs from
the Analyses menu through its parameter form, and the new series appears in the study browser
visibly marked synthetic (orange [SYNTHETIC] row), while the real series beside it is not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")
pytest.importorskip("workstation_monai_gan")

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import QApplication
from workstation_monai_gan.plugin import DEMO_WEIGHTS

from workstation.gui.browser import SERIES_ROLE, SYNTHETIC_COLOUR
from workstation.gui.main_window import MainWindow
from workstation.gui.parameter_form import ParameterDialog

pytestmark = pytest.mark.gui

GAN_ACTION = "Synthetic images (GAN) (gan.generate)"


@pytest.fixture
def window(qtbot, workstation_store, tmp_path):
    from workstation.dicom.index import index_paths
    from workstation.dicom.index_samples import write_series

    real = write_series(tmp_path / "real", slices=3, rows=16, columns=16, series_description="AX")
    index_paths(workstation_store, [real.folder])
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(workstation_store, settings=settings)
    qtbot.addWidget(window)
    window.resize(1300, 700)
    window.show()
    qtbot.waitExposed(window)
    yield window
    if window.jobs_panel is not None:
        window.jobs_panel.shutdown()


def series_rows(window) -> dict[str, object]:
    """Browser rows by description text (what the user reads in column 2)."""
    tree = window.browser.tree
    rows, stack = {}, [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    while stack:
        item = stack.pop()
        if item.data(0, SERIES_ROLE):
            rows[item.text(2)] = item
        stack.extend(item.child(i) for i in range(item.childCount()))
    return rows


def orange_pixels(window, item) -> int:
    """Pixels of the synthetic colour drawn in the row of `item` in the browser."""
    tree = window.browser.tree
    tree.scrollToItem(item)
    image = tree.viewport().grab().toImage()
    rect = tree.visualItemRect(item).united(tree.visualRect(tree.indexFromItem(item, 3)))
    found = 0
    for y in range(rect.top(), rect.bottom()):
        for x in range(rect.left(), min(rect.right(), image.width() - 1)):
            colour = image.pixelColor(x, y)
            if (
                abs(colour.red() - SYNTHETIC_COLOUR.red()) < 40
                and abs(colour.green() - SYNTHETIC_COLOUR.green()) < 40
                and abs(colour.blue() - SYNTHETIC_COLOUR.blue()) < 40
            ):
                found += 1
    return found


def test_generate_from_the_menu_with_no_selection_adds_a_synthetic_series(qtbot, window, shots_dir):
    assert window.model is None  # nothing open, nothing selected
    window._fill_analyses_menu()
    actions = {a.text(): a for a in window.analyses_menu.actions()}
    assert actions[GAN_ACTION].isEnabled()
    assert list(series_rows(window)) == ["AX"]

    def fill_form():
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, ParameterDialog)
        assert dialog.weights.currentText() == "Shipped demo weights"  # the default
        dialog.editors["count"].setValue(2)
        dialog.editors["seed"].setValue(7)
        dialog.device.setCurrentText("cpu")
        dialog.accept()

    QTimer.singleShot(0, fill_form)
    actions[GAN_ACTION].trigger()  # the form opens modally; fill_form answers it
    panel = window.jobs_panel
    assert panel is not None and panel.running()
    with qtbot.waitSignal(panel.finished, timeout=120_000) as blocker:
        pass
    outcome = blocker.args[0]
    assert outcome.outcome == "succeeded", outcome.error
    qtbot.waitUntil(lambda: len(series_rows(window)) == 2, timeout=60_000)

    rows = series_rows(window)
    generated = next(item for text, item in rows.items() if text != "AX")
    assert generated.text(2).startswith("[SYNTHETIC] ")
    # Made with the shipped demo weights, and says so, once.
    assert generated.text(2) == "[SYNTHETIC] DEMO SYNTHETIC GAN CT seed 7"
    # The runner wrote them into a results folder of the store, named in the run record.
    assert Path(outcome.out_dir).parent == window.store_dir / "results" / "gan.generate"
    run = json.loads((Path(outcome.out_dir) / "run.json").read_text())
    assert run["weights"]["demo"] is True and run["weights"]["path"] == DEMO_WEIGHTS
    # The folder is named by the run's own id: run.json and the run history say the same one.
    from workstation.plugins.run_store import RunStore

    assert Path(outcome.out_dir).name == outcome.run_id == run["run_id"]
    with RunStore(window.store_dir) as runs:
        assert runs.get(Path(outcome.out_dir).name).out_dir == outcome.out_dir
    assert generated.text(1) == "CT"
    assert generated.text(3) == "64x64x2"
    colours = {generated.foreground(c).color().getRgb()[:3] for c in range(4)}
    assert colours == {SYNTHETIC_COLOUR.getRgb()[:3]}
    window.browser.tree.setCurrentItem(rows["AX"])  # the selection highlight away from both
    window.browser.tree.clearSelection()
    qtbot.wait(50)
    assert orange_pixels(window, generated) > 20  # drawn in orange on screen
    assert orange_pixels(window, rows["AX"]) == 0
    dock = window.docks["Studies"]
    window.resizeDocks([dock], [640], Qt.Orientation.Horizontal)
    for column, width in enumerate((170, 70, 260, 80)):
        window.browser.tree.setColumnWidth(column, width)
    qtbot.wait(50)
    window.browser.grab().save(str(shots_dir / "browser-generated-synthetic.png"))

    # The new series opens like any other: two 64x64 slices with CT values.
    window.open_series(generated.data(0, SERIES_ROLE))
    volume = window.model.volume
    assert volume.array.shape == (2, 64, 64)
    assert np.ptp(volume.array) > 100  # an image, not a blank
    assert generated.parent().parent() is not rows["AX"].parent().parent()  # a new patient
