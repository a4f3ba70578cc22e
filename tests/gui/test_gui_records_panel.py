"""The records panel draws what the records store holds: curves with the stored times and values,
spans and markers at their dates, study markers that open the study, hover text, a risk curve on
the same time axis, and a clear empty state."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QPointF, QSettings, Qt

from workstation.core.refs import PatientRef
from workstation.core.results import TimeSeries
from workstation.gui.records_panel import RecordsPanel
from workstation.records.store import RecordsStore
from workstation.records.synth import write_bundles

pytestmark = pytest.mark.gui

CREATININE = "2160-0"


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory):
    """Two synthetic Synthea-shaped patients imported into a store; the second (seed 7) has
    imaging studies, a procedure and the outcome condition."""
    root = tmp_path_factory.mktemp("records-panel")
    truths = write_bundles(root / "bundles", patients=2, seed=7)
    store = root / "store"
    with RecordsStore(store) as records_store:
        assert records_store.import_paths([root / "bundles"]).ok
        timelines = {t.mrn: records_store.timeline(t.mrn) for t in truths}
    with_studies = next(t for t in truths if timelines[t.mrn].studies)
    return store, with_studies, timelines[with_studies.mrn]


def panel_for(qtbot, store: Path) -> RecordsPanel:
    panel = RecordsPanel(store)
    qtbot.addWidget(panel)
    panel.resize(1100, 650)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def scene_point(plot, x: float, y: float) -> QPointF:
    return plot.getViewBox().mapViewToScene(QPointF(x, y))


def assert_same_time_axis(plots, moments) -> None:
    """Each moment sits at the same horizontal screen position in every row."""
    for t in moments:
        xs = [scene_point(plot, t, 0.0).x() for plot in plots]
        assert max(xs) - min(xs) < 1.0, (t, xs)


def iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def test_curves_are_the_stored_observations_and_the_codes_can_be_chosen(qtbot, records):
    store, truth, timeline = records
    panel = panel_for(qtbot, store)
    assert panel.show_patient(truth.mrn)  # the MRN DICOM carries as PatientID
    assert panel.timeline.patient_id == truth.patient_id
    assert truth.mrn in panel.title.text()
    panel.set_checked_codes([CREATININE, "8480-6"])
    assert set(panel.curves) == {CREATININE, "8480-6"}
    for code in (CREATININE, "8480-6"):
        x, y = panel.curves[code].getData()
        np.testing.assert_array_equal(x, timeline.observations[code].times)
        np.testing.assert_array_equal(y, timeline.observations[code].values)
    legend = panel.curve_plots[CREATININE].legend
    assert any("(mg/dL)" in label.text for _sample, label in legend.items)
    # every row shares one time axis: zooming one zooms the others
    qtbot.wait(20)  # let the layout settle
    panel.history_plot.setXRange(1.60e9, 1.65e9, padding=0)
    assert_same_time_axis([panel.history_plot, *panel.curve_plots.values()], [1.61e9, 1.64e9])
    panel.set_checked_codes(["8480-6"])
    assert list(panel.curves) == ["8480-6"]
    # the choice is kept for the next patient shown
    assert panel.chosen_codes == ["8480-6"]


def test_spans_events_and_studies_are_drawn_at_their_dates(qtbot, records):
    store, truth, timeline = records
    panel = panel_for(qtbot, store)
    panel.show_patient(truth.patient_id)  # the FHIR id works too
    drawn = {(d.span.kind, d.span.code): d for d in panel.drawn_spans}
    assert len(drawn) == len(timeline.spans)
    for span in timeline.spans:
        bar = drawn[(span.kind, span.code)]
        assert bar.x0 == span.start
        if span.end is None:  # ongoing: runs to the last recorded moment
            assert bar.ongoing and bar.x1 >= max(e.time for e in timeline.events if e.time)
    # the outcome condition sits where the generator put it
    outcome = drawn[("condition", "14669001")]
    assert time.strftime("%Y-%m-%d", time.gmtime(outcome.x0)) == "2024-03-11"
    conditions = next(i for i in panel.history_plot.items if i.objectName() == "spans-condition")
    np.testing.assert_array_equal(
        np.sort(conditions.opts["x0"]),
        np.sort([s.start for s in timeline.spans if s.kind == "condition"]),
    )
    encounters = [e.time for e in timeline.events if e.kind == "encounter"]
    procedures = [e.time for e in timeline.events if e.kind == "procedure"]
    np.testing.assert_array_equal(panel.event_items["encounter"].getData()[0], encounters)
    np.testing.assert_array_equal(panel.event_items["procedure"].getData()[0], procedures)
    assert "report" not in panel.event_items
    xs, _ = panel.study_item.getData()
    np.testing.assert_array_equal(xs, [s.time for s in timeline.studies])
    assert [p.data() for p in panel.study_item.points()] == [s.study_uid for s in timeline.studies]


def test_clicking_a_study_marker_asks_to_open_that_study(qtbot, records):
    store, truth, timeline = records
    panel = panel_for(qtbot, store)
    panel.show_patient(truth.mrn)
    study = timeline.studies[1]
    scene = scene_point(panel.history_plot, study.time, 0.0)
    where = panel.graphics.mapFromScene(scene)
    with qtbot.waitSignal(panel.study_open_requested, timeout=2000) as opened:
        qtbot.mouseClick(panel.graphics.viewport(), Qt.MouseButton.LeftButton, pos=where)
    assert opened.args == [study.study_uid]
    # hovering the marker names the study and its date
    text = panel.hover_text_at(scene)
    assert "CT study" in text and time.strftime("%Y-%m-%d", time.gmtime(study.time)) in text


def test_hover_shows_value_unit_and_date(qtbot, records):
    store, truth, timeline = records
    panel = panel_for(qtbot, store)
    panel.show_patient(truth.mrn)
    panel.set_checked_codes([CREATININE])
    series = timeline.observations[CREATININE]
    t, v = float(series.times[4]), float(series.values[4])
    text = panel.hover_text_at(scene_point(panel.curve_plots[CREATININE], t, v))
    assert f"{v:g} mg/dL" in text and time.strftime("%Y-%m-%d", time.gmtime(t)) in text
    far = scene_point(panel.curve_plots[CREATININE], t + 40 * 86400, v + 5)
    assert panel.hover_text_at(far) is None


def test_risk_curve_and_attributions_share_the_time_axis(qtbot, records, shots_dir):
    store, truth, timeline = records
    panel = panel_for(qtbot, store)
    panel.show_patient(truth.mrn)
    panel.set_checked_codes([CREATININE, "8480-6"])
    times = np.linspace(timeline.studies[0].time, timeline.spans[-1].start, 16).round()
    risk = np.linspace(0.05, 0.9, 16) ** 2
    series = TimeSeries(
        name="renal_risk",
        patient=PatientRef(truth.mrn),
        times=[iso(t) for t in times],
        values=risk.tolist(),
        units="probability",
        attributions={"creatinine": (risk * 0.4).tolist(), "systolic bp": (-risk * 0.1).tolist()},
    )
    assert panel.show_time_series(series)
    x, y = panel.risk_curve.getData()
    np.testing.assert_array_equal(x, times)
    np.testing.assert_allclose(y, risk)
    assert set(panel.attribution_curves) == {"creatinine", "systolic bp"}
    np.testing.assert_allclose(panel.attribution_curves["creatinine"].getData()[1], risk * 0.4)
    names = [label.text for _sample, label in panel.risk_legend.items]
    assert names[:2] == ["renal_risk (probability)", "attr. creatinine"]  # largest first
    at = panel.attribution_view.mapViewToScene(QPointF(times[12], risk[12] * 0.4))
    text = panel.hover_text_at(at)
    assert (
        f"attribution of creatinine: {risk[12] * 0.4:+.3g}" in text and iso(times[12])[:10] in text
    )
    # same axis: the risk row follows the history row's time range
    qtbot.wait(20)
    panel.history_plot.setXRange(times[2], times[9], padding=0)
    rows = [panel.history_plot, panel.risk_plot, *panel.curve_plots.values()]
    assert_same_time_axis(rows, [times[3], times[8]])
    for t in (times[3], times[8]):  # the attributions' own view box too
        assert panel.attribution_view.mapViewToScene(QPointF(t, 0)).x() == pytest.approx(
            scene_point(panel.risk_plot, t, 0).x(), abs=1.0
        )
    panel.history_plot.autoRange()
    panel.history_plot.setXRange(times[0] - 200 * 86400, times[-1] + 200 * 86400, padding=0)
    creatinine = timeline.observations[CREATININE]
    hovered = scene_point(panel.curve_plots[CREATININE], creatinine.times[6], creatinine.values[6])
    assert "mg/dL" in panel.hover_text_at(hovered)
    qtbot.wait(50)
    shot = shots_dir / "records_panel.png"
    panel.grab().save(str(shot))
    assert shot.stat().st_size > 10_000


def test_risk_for_another_patient_waits_until_that_patient_is_shown(qtbot, records):
    store, truth, _timeline = records
    panel = panel_for(qtbot, store)
    with RecordsStore(store) as records_store:
        other = next(p for p in records_store.patients() if p["patient_id"] != truth.patient_id)
    panel.show_patient(other["identifiers"][0])
    series = TimeSeries(
        name="renal_risk",
        patient=PatientRef(truth.mrn),
        times=["2021-01-01T00:00:00Z", "2022-01-01T00:00:00Z"],
        values=[0.1, 0.2],
    )
    assert not panel.show_time_series(series)
    assert panel.risk_curve is None
    panel.show_patient(truth.mrn)
    assert panel.risk_curve is not None


def test_unknown_patient_shows_a_clear_empty_state(qtbot, records, tmp_path):
    store, _truth, _timeline = records
    panel = panel_for(qtbot, store)
    assert not panel.show_patient("MRN-NOBODY")
    assert panel.empty.isVisible() and not panel.records_area.isVisible()
    assert panel.empty.text() == "No records for patient MRN-NOBODY."
    assert panel.curves == {} and panel.history_plot is None
    # a store with no records at all says the same, not an error
    empty_store = tmp_path / "empty-store"
    empty_store.mkdir()
    other = panel_for(qtbot, empty_store)
    assert not other.show_patient("SYNTH-TEST-1")
    assert other.empty.text() == "No records for patient SYNTH-TEST-1."


def test_mixed_units_are_flagged_in_the_list_and_legend(qtbot, records):
    from dataclasses import replace

    store, truth, timeline = records
    panel = panel_for(qtbot, store)
    creatinine = replace(
        timeline.observations[CREATININE], units_seen=("mg/dL", "umol/L"), mixed_units=True
    )
    panel.patient_key = truth.mrn
    panel.show_timeline(replace(timeline, observations={CREATININE: creatinine}))
    panel.set_checked_codes([CREATININE])
    row = panel.code_list.item(0)
    assert "mixed units: mg/dL, umol/L" in row.text()
    assert "umol/L" in row.toolTip()
    legend_texts = [label.text for _s, label in panel.curve_plots[CREATININE].legend.items]
    assert any("mixed units" in text for text in legend_texts)


def test_main_window_shows_records_of_the_opened_series_and_opens_studies(
    qtbot, tmp_path, workstation_store, shots_dir
):
    """The DICOM PatientID of the opened series selects the records; a study marker opens that
    study's first series."""
    from workstation.dicom.index import index_paths
    from workstation.gui.main_window import MainWindow
    from workstation.records.synth import write_bundles as bundles
    from workstation.testing.phantoms import write_ct_phantom_series

    truths = bundles(tmp_path / "bundles", patients=2, seed=7)
    with RecordsStore(workstation_store) as records_store:
        records_store.import_paths([tmp_path / "bundles"])
        truth = next(t for t in truths if records_store.timeline(t.mrn).studies)
        study = records_store.timeline(truth.mrn).studies[0]
    write_ct_phantom_series(
        tmp_path / "ct",
        shape=(4, 32, 32),
        spacing=(2.0, 2.0, 4.0),
        patient_id=truth.mrn,
        study_uid=study.study_uid,
        lesions=0,
    )
    index_paths(workstation_store, [tmp_path / "ct"])
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(workstation_store, settings=settings)
    qtbot.addWidget(window)
    window.show()
    panel = window.records_panel
    assert panel.timeline is None
    browser = window.browser
    browser.tree.setCurrentItem(browser.tree.topLevelItem(0))  # selecting the patient
    assert panel.timeline is not None and panel.timeline.patient_id == truth.patient_id
    assert panel.study_item is not None
    filled = [p.brush().color().alpha() > 0 for p in panel.study_item.points()]
    assert filled == [s.study_uid == study.study_uid for s in panel.timeline.studies]
    panel.study_open_requested.emit(study.study_uid)
    assert window.model is not None
    assert window.model.volume.source.study_uid == study.study_uid
    # opening a series (here from the browser) shows its patient's records too
    panel.show_patient(None)
    assert panel.timeline is None and panel.empty.text() == "No patient selected."
    (series_id,) = browser.visible_series()
    browser.series_opened.emit(series_id)
    assert panel.timeline.patient_id == truth.patient_id
    window.identity_action.trigger()  # View > Hide patient identity hides it here too
    assert truth.mrn not in panel.title.text() and "SYNTHETIC" in panel.title.text()
    window.identity_action.trigger()
    assert truth.mrn in panel.title.text()
    panel.study_open_requested.emit("1.2.3.not.indexed")
    assert "not in the image index" in window.statusBar().currentMessage()
    times = [s.time_text for s in panel.timeline.studies]
    window.show_results(
        [TimeSeries(name="risk", patient=PatientRef(truth.mrn), times=times, values=[0.2, 0.6])]
    )
    assert panel.risk_curve is not None
    window.resize(1400, 950)
    qtbot.wait(50)
    window.grab().save(str(shots_dir / "records_panel_main_window.png"))
