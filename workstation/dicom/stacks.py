"""Split a series' frames into stacks and work out each stack's voxel grid.

A stack is a set of parallel frames of one size that form one 3-D volume. `group_stacks` splits a
series by `FrameRecord.stack_key` (orientation, rows x columns, echo, temporal position, stack id)
and orders each stack by ImagePositionPatient projected on the slice normal; never by file name or
InstanceNumber, which scanners and exporters get wrong. `plan_stack` turns one ordered stack into
the grid the loader fills, with every irregularity reported as a warning that the loader puts on
`Volume.warnings` (and `workstation show` prints):

- duplicate positions: the first frame at each position is used (the others are named);
- missing slices (gaps that are whole multiples of the usual spacing): the grid keeps the usual
  spacing and the missing slices are filled with the volume's minimum value, visibly blank;
- non-uniform spacing otherwise: resampled by linear interpolation along the normal onto a regular
  grid at the median spacing;
- gantry tilt / sheared stacks (positions not along the slice normal): each slice is shifted in
  its plane onto an orthogonal grid that covers all of them (linear interpolation);
- in-plane pixel spacing that differs between frames: the first frame's is used.

Slice spacing always comes from positions; SliceThickness is used only for a single-slice stack.
Frames without position or orientation form their own stacks ("nogeom" keys) kept in InstanceNumber
then file order, placed at the origin with identity direction, with a warning saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from workstation.core.volume import Geometry
from workstation.dicom.records import FrameRecord

DUPLICATE_TOLERANCE_MM = 0.01
UNIFORM_TOLERANCE = 0.01  # relative spacing variation accepted as uniform
SHEAR_TOLERANCE = 1e-3  # |sin| of the angle between the slice direction and the normal


def group_stacks(frames: Sequence[FrameRecord]) -> list[list[FrameRecord]]:
    """The frames split by stack key, each stack ordered along its normal; biggest stack first.

    Ties (same count) are ordered by key so the numbering ("UID#1", "UID#2") is stable.
    """
    by_key: dict[str, list[FrameRecord]] = {}
    for frame in frames:
        by_key.setdefault(frame.stack_key, []).append(frame)
    stacks = [sort_along_normal(group) for group in by_key.values()]
    stacks.sort(key=lambda stack: (-len(stack), stack[0].stack_key))
    return stacks


def sort_along_normal(frames: Sequence[FrameRecord]) -> list[FrameRecord]:
    """Frames in ascending position along the slice normal (row x column cosine)."""
    tie = [(f.instance_number or 0, f.sop_instance_uid, f.frame_index, f.path) for f in frames]
    if not frames or any(f.position is None or f.orientation is None for f in frames):
        order = sorted(range(len(frames)), key=lambda i: tie[i])
        return [frames[i] for i in order]
    normal = slice_normal(frames[0].orientation)  # type: ignore[arg-type]
    distances = [float(np.dot(normal, f.position)) for f in frames]  # type: ignore[arg-type]
    order = sorted(range(len(frames)), key=lambda i: (distances[i], tie[i]))
    return [frames[i] for i in order]


def slice_normal(orientation: Sequence[float]) -> np.ndarray:
    """Unit normal of a frame: row cosine x column cosine (DICOM's right-handed slice axis)."""
    row, col = unit_cosines(orientation)
    normal = np.cross(row, col)
    return normal / np.linalg.norm(normal)


def unit_cosines(orientation: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Row and column direction cosines, normalised (headers often round them to a few digits)."""
    row = np.asarray(orientation[:3], dtype=float)
    col = np.asarray(orientation[3:], dtype=float)
    return row / np.linalg.norm(row), col / np.linalg.norm(col)


@dataclass
class StackPlan:
    """How the loader turns an ordered stack into a regular grid.

    `frames[n]` is read into acquired slice `slot[n]` of an array `acquired_depth` deep. When
    `resample_k` is None and `shifts` is None that array is the volume itself (the fast path);
    otherwise the loader interpolates it onto the output grid (`shape`).
    """

    frames: list[FrameRecord]
    slot: list[int]
    acquired_depth: int
    shape: tuple[int, int, int]  # output (z, y, x)
    spacing: tuple[float, float, float]  # output (x, y, z) mm
    origin: tuple[float, float, float]
    direction: np.ndarray
    warnings: list[str] = field(default_factory=list)
    missing_slots: list[int] = field(default_factory=list)
    # Non-uniform spacing: output slice k lies at acquired continuous index resample_k[k].
    resample_k: np.ndarray | None = None
    # Shear: per acquired slice, in-plane offset (columns, rows) in voxels to move it onto the grid.
    shifts: np.ndarray | None = None

    @property
    def regular(self) -> bool:
        return self.resample_k is None and self.shifts is None


def plan_stack(stack: Sequence[FrameRecord]) -> StackPlan:
    """The output grid of one stack (frames of one key), and what it takes to fill it."""
    if not stack:
        raise ValueError("an empty stack has no grid")
    frames = list(stack)
    first = frames[0]
    rows, columns = first.rows, first.columns
    warnings: list[str] = []
    if len({(f.rows, f.columns) for f in frames}) > 1:
        raise ValueError("frames of one stack must share rows and columns")
    col_spacing, row_spacing = _in_plane_spacing(frames, warnings)

    if (
        first.position is None
        or first.orientation is None
        or any(f.position is None or f.orientation is None for f in frames)
    ):
        frames = sort_along_normal(frames)
        warnings.append(
            "no ImagePositionPatient/ImageOrientationPatient: frames shown in InstanceNumber order "
            "at the origin, not placed in patient space"
        )
        return StackPlan(
            frames=frames,
            slot=list(range(len(frames))),
            acquired_depth=len(frames),
            shape=(len(frames), rows, columns),
            spacing=(col_spacing, row_spacing, first.slice_thickness or 1.0),
            origin=(0.0, 0.0, 0.0),
            direction=np.eye(3),
            warnings=warnings,
        )

    frames = sort_along_normal(frames)
    row_dir, col_dir = unit_cosines(first.orientation)
    normal = slice_normal(first.orientation)
    frames = _drop_duplicates(frames, normal, warnings)
    positions = np.array([f.position for f in frames], dtype=float)
    distances = positions @ normal
    direction = np.column_stack([row_dir, col_dir, normal])

    if len(frames) == 1:
        thickness = first.slice_thickness if first.slice_thickness else 1.0
        return StackPlan(
            frames=frames,
            slot=[0],
            acquired_depth=1,
            shape=(1, rows, columns),
            spacing=(col_spacing, row_spacing, float(thickness)),
            origin=tuple(positions[0]),
            direction=direction,
            warnings=warnings,
        )

    gaps = np.diff(distances)
    spacing_k = float(np.median(gaps))
    shifts = _shear_shifts(
        positions, distances, normal, row_dir, col_dir, col_spacing, row_spacing, warnings
    )
    origin = positions[0].copy()
    shape_yx = (rows, columns)
    if shifts is not None:
        low = np.floor(shifts.min(axis=0))
        high = np.ceil(shifts.max(axis=0))
        shifts = shifts - low  # all offsets >= 0 on the enlarged grid
        extra = (high - low).astype(int)
        shape_yx = (rows + int(extra[1]), columns + int(extra[0]))
        origin = origin + low[0] * col_spacing * row_dir + low[1] * row_spacing * col_dir
        # The grid's first slice lies on the first frame's plane, through the enlarged corner.

    uniform = np.all(np.abs(gaps - spacing_k) <= UNIFORM_TOLERANCE * spacing_k)
    slot = list(range(len(frames)))
    depth = len(frames)
    resample_k = None
    missing: list[int] = []
    if not uniform:
        ratios = gaps / spacing_k
        whole = np.rint(ratios)
        if np.all(whole >= 1) and np.all(np.abs(ratios - whole) <= 0.05):
            slot = [0, *np.cumsum(whole).astype(int).tolist()]
            depth = slot[-1] + 1
            missing = sorted(set(range(depth)) - set(slot))
            at = ", ".join(f"{distances[0] + k * spacing_k:.2f}" for k in missing[:10])
            more = "" if len(missing) <= 10 else f" and {len(missing) - 10} more"
            warnings.append(
                f"{len(missing)} missing slice(s) in a {spacing_k:.3g} mm stack (at {at}{more} mm "
                "along the normal): filled with the volume's minimum value"
            )
        else:
            depth = round(float(distances[-1] - distances[0]) / spacing_k) + 1
            spacing_k = float((distances[-1] - distances[0]) / (depth - 1))
            targets = distances[0] + spacing_k * np.arange(depth)
            resample_k = np.interp(targets, distances, np.arange(len(frames), dtype=float))
            warnings.append(
                f"non-uniform slice spacing ({gaps.min():.3g} to {gaps.max():.3g} mm): "
                f"resampled to a regular {spacing_k:.3g} mm grid by linear interpolation along "
                "the slice normal"
            )
    shape = (depth if resample_k is None else len(resample_k), *shape_yx)
    return StackPlan(
        frames=frames,
        slot=slot,
        acquired_depth=depth if resample_k is None else len(frames),
        shape=shape,  # type: ignore[arg-type]
        spacing=(col_spacing, row_spacing, spacing_k),
        origin=tuple(float(v) for v in origin),  # type: ignore[arg-type]
        direction=direction,
        warnings=warnings,
        missing_slots=missing,
        resample_k=resample_k,
        shifts=shifts,
    )


def stack_geometry(stack: Sequence[FrameRecord]) -> tuple[Geometry, list[str]]:
    """The grid a stack loads onto and the loader's geometry warnings, without reading pixels
    (for `workstation show`); the biggest stack when `stack` holds several."""
    plan = plan_stack(group_stacks(stack)[0])
    grid = Geometry(plan.shape, plan.spacing, plan.origin, tuple(plan.direction.ravel()))
    return grid, list(plan.warnings)


def _in_plane_spacing(frames: list[FrameRecord], warnings: list[str]) -> tuple[float, float]:
    """(column spacing, row spacing): DICOM PixelSpacing is (row spacing, column spacing)."""
    spacings = {f.pixel_spacing for f in frames}
    first = frames[0].pixel_spacing
    if first is None or min(first) <= 0:
        warnings.append("no PixelSpacing: 1 mm pixels assumed")
        return 1.0, 1.0
    if len(spacings) > 1:
        warnings.append(
            f"pixel spacing differs between frames ({len(spacings)} values): "
            f"{first[0]:.4g} x {first[1]:.4g} mm of the first frame used"
        )
    return float(first[1]), float(first[0])


def _drop_duplicates(
    frames: list[FrameRecord], normal: np.ndarray, warnings: list[str]
) -> list[FrameRecord]:
    """One frame per slice location along the normal: the first in stack order is kept."""
    kept: list[FrameRecord] = []
    dropped: list[FrameRecord] = []
    last = None
    for frame in frames:
        distance = float(np.dot(normal, frame.position))  # type: ignore[arg-type]
        if last is not None and abs(distance - last) <= DUPLICATE_TOLERANCE_MM:
            dropped.append(frame)
        else:
            kept.append(frame)
            last = distance
    if dropped:
        names = ", ".join(_frame_name(f) for f in dropped[:5])
        more = "" if len(dropped) <= 5 else f" and {len(dropped) - 5} more"
        warnings.append(f"{len(dropped)} frame(s) at duplicate positions not used: {names}{more}")
    return kept


def _shear_shifts(
    positions: np.ndarray,
    distances: np.ndarray,
    normal: np.ndarray,
    row_dir: np.ndarray,
    col_dir: np.ndarray,
    col_spacing: float,
    row_spacing: float,
    warnings: list[str],
) -> np.ndarray | None:
    """In-plane offsets (columns, rows) of each slice from the normal through the first one.

    None when the stack is not sheared; otherwise the offsets and a gantry tilt warning.
    """
    relative = positions - positions[0]
    in_plane = relative - np.outer(distances - distances[0], normal)
    extent = float(abs(distances[-1] - distances[0]))
    drift = float(np.linalg.norm(in_plane, axis=1).max())
    if extent <= 0 or drift <= SHEAR_TOLERANCE * extent:
        return None
    offsets = np.column_stack([in_plane @ row_dir / col_spacing, in_plane @ col_dir / row_spacing])
    angle = float(
        np.degrees(np.arctan2(np.linalg.norm(in_plane[-1]), distances[-1] - distances[0]))
    )
    warnings.append(
        f"gantry tilt / sheared stack ({angle:.2f} degrees between the slice direction and the "
        "normal): resampled onto an orthogonal grid by shifting each slice in its plane"
    )
    return offsets


def _frame_name(frame: FrameRecord) -> str:
    return (
        frame.path if frame.number_of_frames == 1 else f"{frame.path} frame {frame.frame_index + 1}"
    )
