"""Measurements on a slice: distances in mm and ROIs (ellipse, rectangle, polygon) with mean, SD,
min, max and area in modality units; kept per series in the store ("annotations" area) and
exported to CSV. Qt-free, so the figures are checked without a display."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from workstation.gui.mpr.slicing import SliceGrid
from workstation.store import open_database, register_migrations

KINDS = ("distance", "ellipse", "rectangle", "polygon")

register_migrations(
    "annotations",
    [
        "CREATE TABLE annotations ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " series_id TEXT NOT NULL,"
        " kind TEXT NOT NULL,"
        " plane TEXT NOT NULL,"
        " slice INTEGER NOT NULL,"
        " points TEXT NOT NULL,"
        " stats TEXT NOT NULL,"
        " created_at TEXT NOT NULL);"
        "CREATE INDEX annotations_series ON annotations(series_id)"
    ],
)


@dataclass
class Measurement:
    """`points` are (column, row) positions on slice `slice` of the `plane` view's grid: the two
    ends of a distance, two opposite corners of an ellipse or rectangle, or polygon vertices."""

    kind: str
    plane: str
    slice: int
    points: list[tuple[float, float]]
    stats: dict[str, float] = field(default_factory=dict)
    id: int | None = None

    def summary(self) -> str:
        if self.kind == "distance":
            return f"distance {self.stats['length_mm']:.1f} mm"
        s = self.stats
        return (
            f"{self.kind} area {s['area_mm2']:.1f} mm², mean {s['mean']:.1f}, SD {s['sd']:.1f}, "
            f"min {s['min']:.0f}, max {s['max']:.0f}"
        )


def measure(
    kind: str,
    grid: SliceGrid,
    array: np.ndarray,
    slice_index: int,
    points: list[tuple[float, float]],
    fill: float = 0.0,
) -> Measurement:
    """A measurement with its figures computed on the displayed slice."""
    if kind not in KINDS:
        raise ValueError(f"unknown measurement {kind!r}; choose one of {', '.join(KINDS)}")
    points = [(float(c), float(r)) for c, r in points]
    if kind == "distance":
        if len(points) != 2:
            raise ValueError("a distance needs two points")
        a = grid.to_world(*points[0], slice_index)
        b = grid.to_world(*points[1], slice_index)
        return Measurement(
            kind, grid.plane.value, slice_index, points, {"length_mm": float(np.linalg.norm(a - b))}
        )
    need = 3 if kind == "polygon" else 2
    if len(points) < need:
        raise ValueError(f"a {kind} needs at least {need} points")
    image = grid.extract(array, slice_index, order=1, fill=fill)
    mask = roi_mask(kind, points, image.shape)
    values = np.asarray(image, dtype=np.float64)[mask]
    sr, sd = grid.pixel_size
    if values.size == 0:
        stats = {
            "area_mm2": 0.0,
            "pixels": 0,
            "mean": np.nan,
            "sd": np.nan,
            "min": np.nan,
            "max": np.nan,
        }
    else:
        stats = {
            "area_mm2": float(mask.sum() * sr * sd),
            "pixels": int(mask.sum()),
            "mean": float(values.mean()),
            "sd": float(values.std(ddof=1)) if values.size > 1 else 0.0,
            "min": float(values.min()),
            "max": float(values.max()),
        }
    return Measurement(kind, grid.plane.value, slice_index, points, stats)


def remeasure(
    m: Measurement,
    grid: SliceGrid,
    array: np.ndarray,
    points: list[tuple[float, float]],
    fill: float = 0.0,
) -> Measurement:
    """`m` after its points were edited (moved, a handle or vertex dragged): new figures on the
    same slice, same id, so the stored row is updated rather than added."""
    edited = measure(m.kind, grid, array, m.slice, points, fill=fill)
    edited.id = m.id
    return edited


def roi_mask(kind: str, points: list[tuple[float, float]], shape: tuple[int, int]) -> np.ndarray:
    """Pixels whose centre lies inside the ROI (tested only within the ROI's bounding box, so an
    edit being dragged is re-measured quickly on a large slice)."""
    mask = np.zeros(shape, dtype=bool)
    p = np.asarray(points, dtype=float)
    top = max(int(np.ceil(p[:, 1].min())), 0)
    bottom = min(int(np.floor(p[:, 1].max())) + 1, shape[0])
    left = max(int(np.ceil(p[:, 0].min())), 0)
    right = min(int(np.floor(p[:, 0].max())) + 1, shape[1])
    if top >= bottom or left >= right:
        return mask
    rows, cols = np.mgrid[top:bottom, left:right]
    if kind in ("ellipse", "rectangle"):
        (c0, r0), (c1, r1) = points[0], points[1]
        lo_c, hi_c, lo_r, hi_r = min(c0, c1), max(c0, c1), min(r0, r1), max(r0, r1)
        if kind == "rectangle":
            inside = (cols >= lo_c) & (cols <= hi_c) & (rows >= lo_r) & (rows <= hi_r)
        else:
            cc, rc = (lo_c + hi_c) / 2, (lo_r + hi_r) / 2
            ac, ar = max((hi_c - lo_c) / 2, 1e-9), max((hi_r - lo_r) / 2, 1e-9)
            inside = ((cols - cc) / ac) ** 2 + ((rows - rc) / ar) ** 2 <= 1.0
    else:
        inside = _inside_polygon(p, cols, rows)
    mask[top:bottom, left:right] = inside
    return mask


def simplify_path(
    points: list[tuple[float, float]], tolerance: float = 0.5
) -> list[tuple[float, float]]:
    """A freehand outline with the vertices that matter: every dropped point lies within
    `tolerance` pixels of the kept outline (Ramer-Douglas-Peucker), so the drawn polygon keeps
    its shape and area while its vertex handles stay few enough to grab."""
    p = np.asarray(points, dtype=float)
    if len(p) < 3:
        return [tuple(map(float, q)) for q in p]
    keep = np.zeros(len(p), dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, len(p) - 1)]
    while stack:
        first, last = stack.pop()
        if last <= first + 1:
            continue
        a, b = p[first], p[last]
        segment = b - a
        between = p[first + 1 : last]
        length = float(np.hypot(*segment))
        if length == 0.0:
            distances = np.hypot(*(between - a).T)
        else:
            distances = np.abs(
                segment[0] * (between[:, 1] - a[1]) - segment[1] * (between[:, 0] - a[0])
            )
            distances /= length
        worst = int(np.argmax(distances))
        if distances[worst] > tolerance:
            split = first + 1 + worst
            keep[split] = True
            stack += [(first, split), (split, last)]
    return [(float(x), float(y)) for x, y in p[keep]]


def _inside_polygon(vertices: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Even-odd rule on pixel centres."""
    inside = np.zeros(x.shape, dtype=bool)
    n = len(vertices)
    for k in range(n):
        x0, y0 = vertices[k]
        x1, y1 = vertices[(k + 1) % n]
        crosses = (y0 > y) != (y1 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < x_cross)
    return inside


# --- keeping them -------------------------------------------------------------------------
def save_measurement(store_dir: str | os.PathLike[str], series_id: str, m: Measurement) -> int:
    db = open_database(Path(store_dir), "annotations")
    try:
        with db.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO annotations(series_id, kind, plane, slice, points, stats, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    series_id,
                    m.kind,
                    m.plane,
                    m.slice,
                    json.dumps(m.points),
                    json.dumps(m.stats),
                    datetime.now(UTC).isoformat(timespec="seconds"),
                ),
            )
            m.id = int(cursor.lastrowid)
    finally:
        db.close()
    return m.id


def update_measurement(store_dir: str | os.PathLike[str], m: Measurement) -> None:
    """Keep an edited measurement's points and figures (it must have been saved before)."""
    if m.id is None:
        raise ValueError("only a kept measurement can be updated; save it first")
    db = open_database(Path(store_dir), "annotations")
    try:
        with db.transaction() as conn:
            conn.execute(
                "UPDATE annotations SET points = ?, stats = ? WHERE id = ?",
                (json.dumps(m.points), json.dumps(m.stats), m.id),
            )
    finally:
        db.close()


def delete_measurement(store_dir: str | os.PathLike[str], measurement_id: int) -> None:
    db = open_database(Path(store_dir), "annotations")
    try:
        with db.transaction() as conn:
            conn.execute("DELETE FROM annotations WHERE id = ?", (measurement_id,))
    finally:
        db.close()


def load_measurements(store_dir: str | os.PathLike[str], series_id: str) -> list[Measurement]:
    db = open_database(Path(store_dir), "annotations")
    try:
        rows = db.query(
            "SELECT id, kind, plane, slice, points, stats FROM annotations WHERE series_id = ? "
            "ORDER BY id",
            (series_id,),
        )
    finally:
        db.close()
    return [
        Measurement(
            r["kind"],
            r["plane"],
            int(r["slice"]),
            [tuple(p) for p in json.loads(r["points"])],
            json.loads(r["stats"]),
            int(r["id"]),
        )
        for r in rows
    ]


CSV_COLUMNS = (
    "id",
    "kind",
    "plane",
    "slice",
    "length_mm",
    "area_mm2",
    "pixels",
    "mean",
    "sd",
    "min",
    "max",
    "points",
)


def export_csv(measurements: list[Measurement], path: str | os.PathLike[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for m in measurements:
            row = {k: v for k, v in asdict(m).items() if k in CSV_COLUMNS}
            row.update({k: m.stats.get(k, "") for k in CSV_COLUMNS if k in m.stats or k not in row})
            row["slice"] = m.slice + 1  # as the view shows it
            row["points"] = json.dumps(m.points)
            writer.writerow({k: row.get(k, "") for k in CSV_COLUMNS})
