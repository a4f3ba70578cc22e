"""The records panel: the selected patient's history on one date axis beside the images.

Labs and vitals are curves (the radiologist picks which), conditions, medications and allergies
are labelled bars, encounters and procedures are ticks, imaging studies are markers that open the
study when clicked, and a risk curve from an analysis (a `TimeSeries`, e.g. the records RNN) is
drawn with its per-variable attributions under the same axis. Hovering names the value, unit and
date. Every plot shares the x axis, so zooming one zooms all."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtWidgets import (
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from workstation.core.results import TimeSeries
from workstation.gui import timeline_items as items
from workstation.records.dates import parse_fhir_datetime
from workstation.records.timeline import Timeline

CODE_ROLE = Qt.ItemDataRole.UserRole + 1
DEFAULT_CURVES = 3
HOVER_RADIUS_PX = 14.0
LEFT_AXIS_PX = 78
MAX_DOTS = 500


def date_axis() -> pg.DateAxisItem:
    """Dates in UTC, like the hover text, so a value reads the same wherever it is shown."""
    return pg.DateAxisItem(orientation="bottom", utcOffset=0)


class RecordsPanel(QWidget):
    """`show_patient(MRN or FHIR id)` draws that patient; `study_open_requested(study_uid)` is
    emitted when a study marker is clicked; `show_time_series` adds an analysis's risk curve."""

    study_open_requested = Signal(str)

    def __init__(self, store_dir: str | os.PathLike[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store_dir = Path(store_dir)
        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.empty = QLabel("No patient selected.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.code_list = QListWidget()
        self.code_list.setMaximumWidth(260)
        self.code_list.itemChanged.connect(self._on_code_toggled)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.records_area = QSplitter(Qt.Orientation.Horizontal)
        self.records_area.addWidget(self.code_list)
        self.records_area.addWidget(self.graphics)
        self.records_area.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.title)
        layout.addWidget(self.empty, 1)
        layout.addWidget(self.records_area, 1)
        self.records_area.hide()
        self.title.hide()

        self.patient_key: str | None = None
        self.timeline: Timeline | None = None
        self.chosen_codes: list[str] = []
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.curve_plots: dict[str, pg.PlotItem] = {}
        self.history_plot: pg.PlotItem | None = None
        self.drawn_spans: list[items.DrawnSpan] = []
        self.event_items: dict[str, pg.ScatterPlotItem] = {}
        self.study_item: pg.ScatterPlotItem | None = None
        self.risk_plot: pg.PlotItem | None = None
        self.risk_curve: pg.PlotDataItem | None = None
        self.risk_legend: pg.LegendItem | None = None
        self.attribution_view: pg.ViewBox | None = None
        self.attribution_curves: dict[str, pg.PlotDataItem] = {}
        self.time_series: dict[str, TimeSeries] = {}  # by records patient id
        self._hover: list[tuple[pg.PlotItem, list[items.HoverTarget], pg.TextItem]] = []
        self._filling_codes = False
        self.show_identity = True

    # --- what is shown --------------------------------------------------------------------
    def show_patient(self, patient_key: str | None) -> bool:
        """Draw the records of the patient known by `patient_key` (DICOM PatientID = MRN, or the
        FHIR id); an empty state when there is none. Returns whether records are shown."""
        if not patient_key:
            self.patient_key, self.timeline = None, None
            self._show_empty("No patient selected.")
            return False
        if patient_key == self.patient_key and self.timeline is not None:
            return True
        self.patient_key = patient_key
        from workstation.records.store import PatientNotFound, RecordsStore

        try:
            with RecordsStore(self.store_dir) as store:
                timeline = store.timeline(patient_key)
        except PatientNotFound:
            self.timeline = None
            self._show_empty(f"No records for patient {patient_key}.")
            return False
        except Exception as error:  # an unreadable store is reported in the panel, not fatal
            self.timeline = None
            self._show_empty(f"Cannot read the records in {self.store_dir}: {error}")
            return False
        self.show_timeline(timeline)
        return True

    def show_timeline(self, timeline: Timeline) -> None:
        """Draw `timeline` (what `RecordsStore.timeline` returns)."""
        self.timeline = timeline
        if items.time_range(timeline) is None:
            self._show_empty(f"No records for patient {self.patient_key or timeline.patient_id}.")
            return
        self.title.setText(_title(timeline, self.show_identity))
        self.title.show()
        self.empty.hide()
        self.records_area.show()
        self._fill_code_list(timeline)
        self._draw()

    def show_time_series(self, series: TimeSeries) -> bool:
        """Keep an analysis's risk curve for its patient; draw it when that patient is shown (or
        show that patient when none is). Returns whether it is on screen now."""
        key = series.patient.patient_id if series.patient else None
        if key is None and self.timeline is not None:
            patient_id = self.timeline.patient_id
        elif key is None:
            return False
        else:
            patient_id = self._resolve(key)
            if patient_id is None:
                return False
        self.time_series[patient_id] = series
        if self.timeline is None:
            return self.show_patient(key)
        if self.timeline.patient_id == patient_id:
            self._draw()
            return True
        return False

    def set_show_identity(self, show: bool) -> None:
        """Hide name, MRN and birth date (View > Hide patient identity); "synthetic" stays."""
        self.show_identity = show
        if self.timeline is not None:
            self.title.setText(_title(self.timeline, show))

    def checked_codes(self) -> list[str]:
        out = []
        for row in range(self.code_list.count()):
            item = self.code_list.item(row)
            if item.checkState() == Qt.CheckState.Checked:
                out.append(item.data(CODE_ROLE))
        return out

    def set_checked_codes(self, codes: list[str]) -> None:
        self._filling_codes = True
        for row in range(self.code_list.count()):
            item = self.code_list.item(row)
            if item.flags() & Qt.ItemFlag.ItemIsUserCheckable:
                wanted = item.data(CODE_ROLE) in codes
                item.setCheckState(Qt.CheckState.Checked if wanted else Qt.CheckState.Unchecked)
        self._filling_codes = False
        self._on_code_toggled(None)

    def hover_text_at(self, scene_pos: QPointF) -> str | None:
        """What hovering at `scene_pos` shows (None when nothing is near)."""
        self._on_mouse_moved(scene_pos)
        for _plot, _targets, label in self._hover:
            if label.isVisible():
                return label.toPlainText()
        return None

    # --- building -------------------------------------------------------------------------
    def _show_empty(self, message: str) -> None:
        self.graphics.clear()
        self._forget_items()
        self.code_list.clear()
        self.records_area.hide()
        self.title.hide()
        self.empty.setText(message)
        self.empty.show()

    def _forget_items(self) -> None:
        self.curves, self.curve_plots, self.drawn_spans, self.event_items = {}, {}, [], {}
        self.history_plot = self.study_item = self.risk_plot = self.risk_curve = None
        self.risk_legend = None
        if self.attribution_view is not None:
            self.attribution_view.setParentItem(None)
            if self.attribution_view.scene() is not None:
                self.attribution_view.scene().removeItem(self.attribution_view)
        self.attribution_view, self.attribution_curves = None, {}
        self._hover = []

    def _fill_code_list(self, timeline: Timeline) -> None:
        self._filling_codes = True
        self.code_list.clear()
        numeric = [code for code, s in timeline.observations.items() if s.numeric]
        chosen = [code for code in self.chosen_codes if code in numeric] or numeric[:DEFAULT_CURVES]
        for code, series in timeline.observations.items():
            item = QListWidgetItem(items.series_label(series))
            item.setData(CODE_ROLE, code)
            if series.numeric:
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(
                    Qt.CheckState.Checked if code in chosen else Qt.CheckState.Unchecked
                )
                item.setToolTip(f"{code}: {series.times.size} values in {series.unit or 'no unit'}")
            else:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsUserCheckable)
                item.setText(f"{item.text()} (coded values, no curve)")
            if series.mixed_units:
                item.setForeground(pg.mkColor(240, 170, 60))
                item.setToolTip(
                    f"{code} came in {', '.join(series.units_seen)}; the curve is in "
                    f"{series.unit}; values that cannot be converted are left out"
                )
            self.code_list.addItem(item)
        self._filling_codes = False

    def _on_code_toggled(self, _item: QListWidgetItem | None) -> None:
        if self._filling_codes or self.timeline is None:
            return
        self.chosen_codes = self.checked_codes()
        self._draw()

    def _draw(self) -> None:
        """(Re)build every plot: one row per chosen code, the history row, the risk row."""
        timeline = self.timeline
        self.graphics.clear()
        self._forget_items()
        extent = items.time_range(timeline)
        if extent is None:
            return
        first, last = extent
        plots: list[pg.PlotItem] = []
        row = 0
        for n, code in enumerate(self.checked_codes()):
            series = timeline.observations[code]
            plot = self.graphics.addPlot(row=row, col=0, axisItems={"bottom": date_axis()})
            colour = items.CURVE_COLOURS[n % len(items.CURVE_COLOURS)]
            plot.addLegend(offset=(5, 2), labelTextSize="8pt", brush=pg.mkBrush(0, 0, 0, 160))
            plot.setLabel("left", series.unit or "value")
            dots = series.times.size <= MAX_DOTS  # a dot per value while they can be told apart
            curve = plot.plot(
                series.times,
                series.values,
                name=items.series_label(series),
                pen=pg.mkPen(*colour, width=2),
                symbol="o" if dots else None,
                symbolSize=5,
                symbolBrush=pg.mkBrush(*colour),
                connect="finite",
            )
            if not dots:  # thousands of values: draw what the pixels can show
                curve.setDownsampling(auto=True, method="peak")
                curve.setClipToView(True)
            self.curves[code] = curve
            self.curve_plots[code] = plot
            self._add_hover(plot, [items.curve_target(series)])
            plots.append(plot)
            row += 1
        self.history_plot = self._draw_history(row, timeline, last)
        plots.append(self.history_plot)
        row += 1
        series = self.time_series.get(timeline.patient_id)
        if series is not None and series.times:
            self.risk_plot = self._draw_risk(row, series)
            plots.append(self.risk_plot)
            first = min(first, self._risk_times(series)[0])
            last = max(last, self._risk_times(series)[-1])
        for plot in plots:
            plot.setXLink(self.history_plot)
            plot.getAxis("left").setWidth(LEFT_AXIS_PX)  # same width: dates line up in every row
            plot.hideAxis("bottom")
        plots[-1].showAxis("bottom")
        pad = max((last - first) * 0.03, items.DAY)
        self.history_plot.setXRange(first - pad, last + pad, padding=0)

    def _draw_history(self, row: int, timeline: Timeline, last: float) -> pg.PlotItem:
        plot = self.graphics.addPlot(row=row, col=0, axisItems={"bottom": date_axis()})
        plot.getViewBox().setMouseEnabled(y=False)
        lanes = {"studies": 0, "procedure": 1, "encounter": 2}
        self.study_item = items.draw_studies(plot, timeline.studies, lanes["studies"])
        if self.study_item is not None:
            self.study_item.sigClicked.connect(self._on_study_clicked)
        event_lanes = {k: lanes[k] for k in ("procedure", "encounter")}
        self.event_items = items.draw_events(plot, timeline.events, event_lanes)
        self.drawn_spans = items.draw_spans(plot, timeline.spans, last, first_lane=3)
        plot.getAxis("left").setTicks([[(0, "imaging"), (1, "procedures"), (2, "encounters")], []])
        top = max([d.lane for d in self.drawn_spans], default=2)
        plot.setYRange(-0.7, top + 0.7, padding=0)
        plot.invertY(True)  # imaging on top, closest to the images
        self.graphics.ci.layout.setRowStretchFactor(row, max(2, top // 2 + 1))
        self._add_hover(
            plot,
            [
                items.study_target(timeline.studies, lanes["studies"]),
                items.event_target(timeline.events, event_lanes),
                items.span_target(self.drawn_spans),
            ],
        )
        return plot

    def _risk_times(self, series: TimeSeries) -> np.ndarray:
        return np.array([parse_fhir_datetime(t) for t in series.times], dtype=float)

    def _draw_risk(self, row: int, series: TimeSeries) -> pg.PlotItem:
        """The risk curve on the left axis; attributions in a second view box on the right axis,
        both on the shared time axis."""
        times = self._risk_times(series)
        plot = self.graphics.addPlot(row=row, col=0, axisItems={"bottom": date_axis()})
        # the legend sits in its own row under the plot: many variables never hide the curve
        self.risk_legend = legend = pg.LegendItem(labelTextSize="8pt", colCount=4)
        self.graphics.addItem(legend, row=row + 1, col=0)
        plot.setLabel("left", series.units or series.name)
        plot.getAxis("left").enableAutoSIPrefix(False)
        if min(series.values) >= 0.0 and max(series.values) <= 1.0:
            plot.setYRange(0.0, 1.0, padding=0.02)  # a probability keeps its full scale
        self.risk_curve = plot.plot(
            times, np.asarray(series.values, dtype=float), pen=pg.mkPen(255, 90, 90, width=3)
        )
        legend.addItem(
            self.risk_curve, f"{series.name} ({series.units})" if series.units else series.name
        )
        values = np.asarray(series.values, dtype=float)

        def describe(n: int) -> str:
            return f"{series.name}: {values[n]:.3g} {series.units}\n{items.utc_text(times[n])}"

        targets = [items.HoverTarget(times, values, describe)]
        if series.attributions:
            view = pg.ViewBox()
            self.attribution_view = view
            plot.showAxis("right")
            plot.scene().addItem(view)
            plot.getAxis("right").linkToView(view)
            plot.getAxis("right").setLabel("attribution")
            plot.getAxis("right").enableAutoSIPrefix(False)
            view.setXLink(plot)

            def follow() -> None:
                view.setGeometry(plot.getViewBox().sceneBoundingRect())

            plot.getViewBox().sigResized.connect(follow)
            follow()
            # largest contributions first in the legend
            ranked = sorted(series.attributions.items(), key=lambda kv: -float(np.abs(kv[1]).sum()))
            for n, (variable, values) in enumerate(ranked):
                row_values = np.asarray(values, dtype=float)
                hue = pg.intColor(n + 1, hues=len(ranked) + 2, minValue=180)  # red is the risk
                pen = pg.mkPen(hue, width=1.5)
                curve = pg.PlotDataItem(times, row_values, pen=pen)
                view.addItem(curve)
                legend.addItem(curve, f"attr. {variable}")
                self.attribution_curves[variable] = curve
                targets.append(_attribution_target(view, variable, times, row_values))
        self.graphics.ci.layout.setRowStretchFactor(row, 4)
        self._add_hover(plot, targets)
        return plot

    # --- interaction ----------------------------------------------------------------------
    def _add_hover(self, plot: pg.PlotItem, targets: list[items.HoverTarget]) -> None:
        label = pg.TextItem(color=(255, 255, 255), fill=pg.mkBrush(20, 20, 20, 220), anchor=(0, 1))
        label.hide()
        label.setParentItem(plot.getViewBox())  # above the legend, in pixels not data units
        label.setZValue(10_000)
        self._hover.append((plot, targets, label))

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        for plot, targets, label in self._hover:
            view = plot.getViewBox()
            text = None
            if view.sceneBoundingRect().contains(scene_pos):
                hits = [target.nearest(view, scene_pos, HOVER_RADIUS_PX) for target in targets]
                hits = [hit for hit in hits if hit is not None]
                text = min(hits)[1] if hits else None
            if text:
                label.setText(text)
                rect = view.sceneBoundingRect()  # open the text towards the middle: never cut off
                label.setAnchor(
                    (
                        1.0 if scene_pos.x() > rect.center().x() else 0.0,
                        0.0 if scene_pos.y() < rect.center().y() else 1.0,
                    )
                )
                label.setPos(view.mapFromScene(scene_pos))
                label.show()
            else:
                label.hide()

    def _on_study_clicked(self, _item, points, _event=None) -> None:
        if len(points):
            self.study_open_requested.emit(str(points[0].data()))

    def _resolve(self, key: str) -> str | None:
        from workstation.records.store import PatientNotFound, RecordsStore

        try:
            with RecordsStore(self.store_dir) as store:
                return store.find_patient(key)
        except PatientNotFound:
            return None


def _attribution_target(
    view: pg.ViewBox, variable: str, times: np.ndarray, values: np.ndarray
) -> items.HoverTarget:
    def describe(n: int) -> str:
        return f"attribution of {variable}: {values[n]:+.3g}\n{items.utc_text(times[n])}"

    return items.HoverTarget(times, values, describe, view=view)


def _title(timeline: Timeline, show_identity: bool = True) -> str:
    d = timeline.demographics
    if not show_identity:
        return "Patient records" + ("  ·  [SYNTHETIC]" if d.get("synthetic") else "")
    name = " ".join(p for p in (d.get("given"), d.get("family")) if p)
    mrns = [i["value"] for i in d.get("identifiers", []) if i.get("type_code") == "MR"]
    parts = [name or timeline.patient_id]
    if mrns:
        parts.append(f"MRN {mrns[0]}")
    if d.get("birth_date"):
        parts.append(f"born {d['birth_date']}")
    if d.get("synthetic"):
        parts.append("[SYNTHETIC]")
    return "  ·  ".join(parts)


def first_series_of_study(store_dir: str | os.PathLike[str], study_uid: str) -> str | None:
    """The series id the viewer opens for a study marker (its first stack), or None when the
    study is not in the image index."""
    from workstation.dicom.catalog import Catalog

    with Catalog(store_dir) as catalog:
        for patient in catalog.tree():
            for study in patient["studies"]:
                if study["study_uid"] == study_uid and study["series"]:
                    return study["series"][0]["series_id"]
    return None


def patient_of_browser_item(store_dir: str | os.PathLike[str], item) -> str | None:
    """The DICOM PatientID of the patient a study-browser row belongs to (any of its series
    names it), so selecting a patient, study or series shows that patient's records."""
    from workstation.dicom.catalog import Catalog
    from workstation.gui.browser import SERIES_ROLE

    if item is None:
        return None
    top = item
    while top.parent() is not None:
        top = top.parent()
    pending = [item, top]
    while pending:
        node = pending.pop()
        series_id = node.data(0, SERIES_ROLE)
        if series_id:
            try:
                with Catalog(store_dir) as catalog:
                    return catalog.series_ref(series_id).patient_id or None
            except (LookupError, ValueError):  # a series removed since listing: nothing to show
                return None
        pending.extend(node.child(n) for n in range(node.childCount()))
    return None
