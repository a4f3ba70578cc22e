"""Drawing a records `Timeline` into pyqtgraph plots: curves, labelled span bars, event ticks,
study markers, and the lookup that turns a cursor position into the nearest value for hovering.

Kept apart from the panel widget so each drawing rule (where a span ends, which lane a kind
takes) is one small function the tests can reach."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF

from workstation.records.timeline import Event, ObservationSeries, Span, StudyMarker, Timeline

SPAN_COLOURS = {
    "condition": (220, 110, 90),
    "medication": (90, 170, 230),
    "allergy": (220, 190, 70),
}
EVENT_COLOURS = {"encounter": (170, 170, 170), "procedure": (200, 120, 230)}
STUDY_COLOUR = (80, 220, 140)
CURVE_COLOURS = [
    (100, 190, 255),
    (255, 150, 80),
    (140, 220, 110),
    (240, 100, 160),
    (200, 200, 90),
    (160, 130, 255),
    (90, 220, 210),
    (255, 210, 150),
]
DAY = 86400.0


def utc_text(seconds: float, with_time: bool = True) -> str:
    """A UTC date (and time) for hover text; the axis below uses UTC too."""
    pattern = "%Y-%m-%d %H:%M UTC" if with_time else "%Y-%m-%d"
    return time.strftime(pattern, time.gmtime(seconds))


def time_range(timeline: Timeline) -> tuple[float, float] | None:
    """First and last moment anything in the timeline happens (to end ongoing spans)."""
    points: list[float] = []
    for series in timeline.observations.values():
        if series.times.size:
            points += [float(series.times[0]), float(series.times[-1])]
    for span in timeline.spans:
        points += [t for t in (span.start, span.end) if t is not None]
    for event in timeline.events:
        points += [t for t in (event.time, event.end) if t is not None]
    points += [s.time for s in timeline.studies if s.time is not None]
    return (min(points), max(points)) if points else None


def series_label(series: ObservationSeries) -> str:
    """Legend text: the name, its unit, and a warning when the code came in several units."""
    name = series.display or series.code
    label = f"{name} ({series.unit})" if series.unit else name
    if series.mixed_units:
        label += " ⚠ mixed units: " + ", ".join(series.units_seen)
    return label


@dataclass
class HoverTarget:
    """Points in one plot that hovering can name: x/y in data units and one text per point."""

    xs: np.ndarray
    ys: np.ndarray
    texts: Sequence[str] | Callable[[int], str]  # a function for long series: built on demand
    view: pg.ViewBox | None = None  # where the points are drawn, when not the plot's own view

    def nearest(
        self, view: pg.ViewBox, scene_pos: QPointF, radius_px: float
    ) -> tuple[float, str] | None:
        """(distance in pixels, text) of the point nearest the cursor within `radius_px`."""
        if self.xs.size == 0:
            return None
        view = self.view or view
        # the view maps data to the scene by scale and offset only: vectorised, so hovering a
        # curve of thousands of points stays instant
        origin = view.mapViewToScene(QPointF(0.0, 0.0))
        unit = view.mapViewToScene(QPointF(1.0, 1.0))
        px = origin.x() + self.xs * (unit.x() - origin.x())
        py = origin.y() + self.ys * (unit.y() - origin.y())
        distances = np.hypot(px - scene_pos.x(), py - scene_pos.y())
        best = int(np.argmin(distances))
        if distances[best] > radius_px:
            return None
        text = self.texts(best) if callable(self.texts) else self.texts[best]
        return float(distances[best]), text


def curve_target(series: ObservationSeries) -> HoverTarget:
    name = series.display or series.code
    finite = np.isfinite(series.values)
    times, values = series.times[finite], series.values[finite]

    def describe(n: int) -> str:
        return f"{name}: {values[n]:g} {series.unit}\n{utc_text(float(times[n]))}"

    return HoverTarget(times, values, describe)


@dataclass
class DrawnSpan:
    span: Span
    x0: float
    x1: float
    lane: int
    ongoing: bool


def span_extent(span: Span, last: float) -> tuple[float, float, bool] | None:
    """Where a span's bar starts and ends; an ongoing span runs to the last recorded moment."""
    start = span.start if span.start is not None else span.end
    if start is None:
        return None
    if span.end is not None:
        return start, max(span.end, start + DAY), False
    return start, max(last, start + DAY), True


def draw_spans(
    plot: pg.PlotItem, spans: list[Span], last: float, first_lane: int
) -> list[DrawnSpan]:
    """One bar per span, one lane per span (conditions, then medications, then allergies),
    labelled with its name; ongoing spans get an open (lighter) bar to the last record."""
    drawn: list[DrawnSpan] = []
    order = {kind: n for n, kind in enumerate(SPAN_COLOURS)}
    lane = first_lane
    for span in sorted(spans, key=lambda s: (order.get(s.kind, 9), s.start or 0.0)):
        extent = span_extent(span, last)
        if extent is None:
            continue
        x0, x1, ongoing = extent
        drawn.append(DrawnSpan(span, x0, x1, lane, ongoing))
        lane += 1
    for kind, colour in SPAN_COLOURS.items():
        mine = [d for d in drawn if d.span.kind == kind]
        if not mine:
            continue
        bars = pg.BarGraphItem(
            x0=np.array([d.x0 for d in mine]),
            x1=np.array([d.x1 for d in mine]),
            y=np.array([float(d.lane) for d in mine]),
            height=0.6,
            brushes=[pg.mkBrush(*colour, 110 if d.ongoing else 200) for d in mine],
            pens=[pg.mkPen(*colour) for _ in mine],
        )
        bars.setObjectName(f"spans-{kind}")
        plot.addItem(bars)
        for d in mine:
            label = pg.TextItem(
                _short(d.span.display or d.span.code), color=(235, 235, 235), anchor=(0, 0.5)
            )
            label.setPos(d.x0, d.lane)
            plot.addItem(label)
    return drawn


def span_target(drawn: list[DrawnSpan]) -> HoverTarget:
    xs, ys, texts = [], [], []
    for d in drawn:
        end = "ongoing" if d.ongoing else utc_text(d.x1, with_time=False)
        text = f"{d.span.kind}: {d.span.display or d.span.code}\n{utc_text(d.x0, False)} – {end}"
        for x in (d.x0, (d.x0 + d.x1) / 2, d.x1):
            xs.append(x), ys.append(float(d.lane)), texts.append(text)
    return HoverTarget(np.array(xs, dtype=float), np.array(ys, dtype=float), texts)


def draw_events(
    plot: pg.PlotItem, events: list[Event], lanes: dict[str, int]
) -> dict[str, pg.ScatterPlotItem]:
    """Encounters and procedures as vertical ticks on their own lanes."""
    items = {}
    for kind, lane in lanes.items():
        mine = [e for e in events if e.kind == kind and e.time is not None]
        if not mine:
            continue
        item = pg.ScatterPlotItem(
            x=np.array([e.time for e in mine]),
            y=np.full(len(mine), float(lane)),
            symbol="|",
            size=16,
            pen=pg.mkPen(*EVENT_COLOURS[kind], width=2),
            brush=pg.mkBrush(*EVENT_COLOURS[kind]),
            data=mine,
        )
        item.setObjectName(f"events-{kind}")
        plot.addItem(item)
        items[kind] = item
    return items


def event_target(events: list[Event], lanes: dict[str, int]) -> HoverTarget:
    shown = [e for e in events if e.kind in lanes and e.time is not None]
    return HoverTarget(
        np.array([e.time for e in shown], dtype=float),
        np.array([float(lanes[e.kind]) for e in shown]),
        [f"{e.kind}: {e.display or e.code}\n{utc_text(e.time)}" for e in shown],
    )


def draw_studies(
    plot: pg.PlotItem, studies: list[StudyMarker], lane: int
) -> pg.ScatterPlotItem | None:
    """Imaging studies as clickable diamonds; studies not in the image index are hollow."""
    shown = [s for s in studies if s.time is not None]
    if not shown:
        return None
    item = pg.ScatterPlotItem(
        x=np.array([s.time for s in shown]),
        y=np.full(len(shown), float(lane)),
        symbol="d",
        size=16,
        pen=[pg.mkPen(*STUDY_COLOUR, width=2) for _ in shown],
        brush=[pg.mkBrush(*STUDY_COLOUR) if s.indexed else pg.mkBrush(0, 0, 0, 0) for s in shown],
        data=[s.study_uid for s in shown],
        hoverable=True,
    )
    item.setObjectName("studies")
    plot.addItem(item)
    return item


def study_target(studies: list[StudyMarker], lane: int) -> HoverTarget:
    shown = [s for s in studies if s.time is not None]
    texts = [
        f"{s.modalities} study: {s.description}\n{utc_text(s.time)}\n"
        + ("click to open" if s.indexed else "not in the image index")
        for s in shown
    ]
    return HoverTarget(
        np.array([s.time for s in shown], dtype=float), np.full(len(shown), float(lane)), texts
    )


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
