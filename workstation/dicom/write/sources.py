"""The source images a written object refers to, matched voxel for voxel to a result's grid.

Writers reference the exact source instances (and frames) a result was computed on. The result
is a `Volume` on the source grid; this module reads the source headers (no pixel data) from the
`SeriesRef`'s paths, finds for every source frame which voxels of the result it covers, and
refuses, naming the file, when a frame does not lie on the result's grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workstation.core.refs import SeriesRef
from workstation.core.volume import Geometry

_ON_GRID_TOL = 0.02  # voxels


class SourceProblem(ValueError):
    """The source series cannot be referenced; the message names the series or file."""


@dataclass
class FramePlacement:
    """Where one source frame's pixels are in the result's array: pixel (r, c) of the frame is
    voxel ``origin + r * step_r + c * step_c`` (integer (i, j, k) vectors), so a frame is
    extracted without storing index arrays."""

    path: str
    frame: int  # 0-based frame within the file
    rows: int
    columns: int
    origin: tuple[int, int, int]
    step_r: tuple[int, int, int]
    step_c: tuple[int, int, int]

    @property
    def slice_index(self) -> float:
        """Mean k of the frame's pixels, for ordering frames along the stack."""
        return (
            self.origin[2]
            + (self.rows - 1) / 2 * self.step_r[2]
            + (self.columns - 1) / 2 * self.step_c[2]
        )

    def take(self, array: np.ndarray) -> np.ndarray:
        """The frame's pixels from a [z, y, x] array on the result's grid, shape (rows, columns)."""
        i0, j0, k0 = self.origin
        if self.step_c == (1, 0, 0) and self.step_r == (0, 1, 0):  # the usual case: a k-slice
            return array[k0, j0 : j0 + self.rows, i0 : i0 + self.columns]
        r = np.arange(self.rows)[:, None]
        c = np.arange(self.columns)[None, :]
        i = i0 + r * self.step_r[0] + c * self.step_c[0]
        j = j0 + r * self.step_r[1] + c * self.step_c[1]
        k = k0 + r * self.step_r[2] + c * self.step_c[2]
        return array[k, j, i]


@dataclass
class SourceSeries:
    """Source datasets (headers only) in the order a derived object lists its frames.

    For single-frame sources `datasets` holds one dataset per frame, in slice order; for one
    multi-frame source it holds that dataset and `placements` follow its frame order.
    """

    ref: SeriesRef
    datasets: list[Any]
    placements: list[FramePlacement]

    @property
    def multiframe(self) -> bool:
        return len(self.datasets) == 1 and len(self.placements) > 1

    def frames_of(self, array: np.ndarray) -> np.ndarray:
        """The result's values as source frames: shape (frames, rows, columns)."""
        return np.stack([p.take(array) for p in self.placements])

    @property
    def first(self) -> Any:
        return self.datasets[0]


def read_source_series(ref: SeriesRef | None, grid: Geometry) -> SourceSeries:
    """Read the source headers of `ref` and place each frame on `grid` (the result's grid)."""
    import pydicom

    if ref is None or not ref.paths:
        raise SourceProblem("the input was not a DICOM series (no source files to reference)")
    wanted = set(ref.instance_uids)
    datasets = []
    for path in ref.paths:
        if not Path(path).is_file():
            raise SourceProblem(f"{path}: source file of series {ref.stack_id} no longer exists")
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception as error:
            raise SourceProblem(f"{path}: cannot read source header: {error}") from None
        if wanted and str(getattr(ds, "SOPInstanceUID", "")) not in wanted:
            continue
        datasets.append((path, ds))
    if not datasets:
        raise SourceProblem(f"series {ref.stack_id}: none of its files holds its instances")

    multiframe = [(p, ds) for p, ds in datasets if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1]
    if multiframe:
        if len(datasets) != 1:
            raise SourceProblem(
                f"series {ref.stack_id}: mixes {len(multiframe)} multi-frame files with others; "
                "results can reference one multi-frame file or single-frame files"
            )
        path, ds = datasets[0]
        placements = [
            _place(path, f, *geometry, ds, grid) for f, geometry in enumerate(_frame_geometry(ds))
        ]
        return SourceSeries(ref, [ds], placements)

    placed = []
    for path, ds in datasets:
        (geometry,) = _frame_geometry(ds)
        placed.append((_place(path, 0, *geometry, ds, grid), ds))
    placed.sort(key=lambda item: item[0].slice_index)
    _check_complete([p for p, _ in placed], grid, ref)
    return SourceSeries(ref, [ds for _, ds in placed], [p for p, _ in placed])


def _frame_geometry(ds: Any) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(position, orientation (6), pixel spacing (2)) of every frame of `ds`."""
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if frames == 1 and "ImagePositionPatient" in ds:
        return [_plane(ds, ds, ds)]
    shared = (
        ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else None
    )
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    if len(per_frame) != frames:
        raise SourceProblem(
            f"{getattr(ds, 'filename', '?')}: {frames} frames but {len(per_frame)} per-frame groups"
        )
    out = []
    for item in per_frame:
        position = _group(item, shared, "PlanePositionSequence")
        orientation = _group(item, shared, "PlaneOrientationSequence")
        measures = _group(item, shared, "PixelMeasuresSequence")
        out.append(_plane(position, orientation, measures))
    return out


def _group(item: Any, shared: Any, name: str) -> Any:
    for holder in (item, shared):
        if holder is not None and name in holder:
            return holder[name].value[0]
    raise SourceProblem(f"multi-frame source has no {name} for a frame")


def _plane(position: Any, orientation: Any, measures: Any) -> tuple[np.ndarray, ...]:
    try:
        return (
            np.asarray(position.ImagePositionPatient, dtype=float),
            np.asarray(orientation.ImageOrientationPatient, dtype=float),
            np.asarray(measures.PixelSpacing, dtype=float),
        )
    except AttributeError as error:
        raise SourceProblem(f"source frame lacks plane geometry ({error})") from None


def _place(
    path: str,
    frame: int,
    position: np.ndarray,
    orientation: np.ndarray,
    spacing: np.ndarray,
    ds: Any,
    grid: Geometry,
) -> FramePlacement:
    rows, columns = int(ds.Rows), int(ds.Columns)
    row_cosine, column_cosine = orientation[:3], orientation[3:]
    # pixel (r, c) of the frame is at
    #   position + c * column_spacing * row_cosine + r * row_spacing * column_cosine
    origin = grid.world_to_index(position)
    step_c = grid.world_to_index(position + spacing[1] * row_cosine) - origin
    step_r = grid.world_to_index(position + spacing[0] * column_cosine) - origin
    steps = np.rint([step_r, step_c])
    start = np.rint(origin)
    corners = [(r, c) for r in (0, rows - 1) for c in (0, columns - 1)]
    exact = np.array([origin + r * step_r + c * step_c for r, c in corners])
    snapped = np.array([start + r * steps[0] + c * steps[1] for r, c in corners])
    off_grid = float(np.abs(exact - snapped).max())
    nz, ny, nx = grid.shape
    inside = bool(
        (snapped >= 0).all()
        and (snapped[:, 0] < nx).all()
        and (snapped[:, 1] < ny).all()
        and (snapped[:, 2] < nz).all()
    )
    if off_grid > _ON_GRID_TOL or not inside:
        where = (
            f"frame {frame + 1} of {path}"
            if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1
            else path
        )
        how = f"off by {off_grid:.3f} voxels" if off_grid > _ON_GRID_TOL else "outside it"
        raise SourceProblem(
            f"{where}: source image does not lie on the result's grid ({how}); "
            "the result must keep its source's geometry"
        )
    return FramePlacement(
        path=path,
        frame=frame,
        rows=rows,
        columns=columns,
        origin=_ints(start),
        step_r=_ints(steps[0]),
        step_c=_ints(steps[1]),
    )


def _ints(values: np.ndarray) -> tuple[int, int, int]:
    return tuple(int(v) for v in values)  # type: ignore[return-value]


def _check_complete(placements: Sequence[FramePlacement], grid: Geometry, ref: SeriesRef) -> None:
    """Every slice of the result is covered by one source image, no slice twice."""
    covered = sorted(round(p.slice_index) for p in placements)
    if len(set(covered)) != len(covered):
        raise SourceProblem(f"series {ref.stack_id}: two source images share a slice position")
    if len(covered) != grid.shape[0]:
        raise SourceProblem(
            f"series {ref.stack_id}: {len(covered)} source images for a result of "
            f"{grid.shape[0]} slices"
        )
