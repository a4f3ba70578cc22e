"""Turn a stack of indexed frames into a `Volume`, fast and with exact geometry.

Headers were parsed at index time, so loading only reads pixels: one array is preallocated and
every file's native pixel bytes are read straight into its slice (``os.preadv``), in parallel
threads across files, with rescale done in place while the slice is still in cache. Compressed,
big-endian and deflated files are decoded by pydicom (see `pixels`).

What users get, documented here because every viewer and plugin relies on it:

- Values are modality values: stored value x RescaleSlope + RescaleIntercept, per frame.
- dtype: ``int16`` when every frame's slope and intercept are integers and every rescaled value
  fits in int16 (CT, most MR); otherwise ``float32`` (fractional rescale, PET, 16-bit unsigned
  data above 32767, float pixel data). 32-bit integer data above 2**24 loses precision in float32.
- MONOCHROME1 (white = low value) is inverted onto the same value range so that high values are
  bright like MONOCHROME2; ``metadata["inverted_monochrome1"]`` says so and the window centre is
  inverted with it.
- Pixel padding (PixelPaddingValue, in stored values) becomes -1024 for CT in HU (air) and 0 for
  everything else; ``metadata["padding_value"]`` holds the value used.
- RGB / YBR colour: ``array`` holds the luminance (ITU-R BT.601: 0.299 R + 0.587 G + 0.114 B,
  rounded) so every tool works on it, and ``metadata["rgb"]`` holds the colour itself as a
  ``[z, y, x, 3]`` array of the stored type for viewers that show colour.
- Irregular stacks (missing slices, non-uniform spacing, gantry tilt, duplicate positions) are put
  on a regular grid as `stacks.plan_stack` describes, with a warning on `Volume.warnings` each.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from workstation.core.refs import SeriesRef
from workstation.core.volume import Volume
from workstation.dicom.pixels import (
    decode_frames,
    open_for_pixels,
    read_native_into,
    stored_dtype,
)
from workstation.dicom.records import DicomProblem, FrameRecord
from workstation.dicom.stacks import StackPlan, group_stacks, plan_stack

CT_PADDING_HU = -1024
OTHER_PADDING = 0
LUMA = np.array([0.299, 0.587, 0.114])
INT16 = np.iinfo(np.int16)


def load_frames(
    frames: Sequence[FrameRecord], source: SeriesRef | None = None, workers: int | None = None
) -> Volume:
    """One stack's frames as a Volume in LPS (raises `DicomProblem` naming a file that fails).

    Frames of several stacks load the biggest stack, with a warning naming how many there are;
    callers that list stacks (the catalog) pass one stack from `group_stacks`.
    """
    frames = list(frames)
    if not frames:
        raise ValueError("no frames to load")
    stacks = group_stacks(frames)
    warnings: list[str] = []
    if len(stacks) > 1:
        warnings.append(
            f"the frames form {len(stacks)} stacks (orientation, size, echo or temporal position "
            f"differ); the biggest one ({len(stacks[0])} frames) is loaded"
        )
    plan = plan_stack(stacks[0])
    warnings.extend(plan.warnings)
    _check_layout(plan.frames)

    integer_rescale = all(
        float(f.rescale_slope).is_integer() and float(f.rescale_intercept).is_integer()
        for f in plan.frames
    )
    filled = None
    if integer_rescale:
        filled = _fill(plan, np.dtype(np.int16), workers)
    if filled is None:
        filled = _fill(plan, np.dtype(np.float32), workers)
    if filled is None:  # pragma: no cover - float32 always fits
        raise DicomProblem(plan.frames[0].path, "pixel values could not be converted")
    array, rgb = filled
    array, rgb = _onto_grid(plan, array, rgb, warnings)
    return Volume(
        array,
        spacing=plan.spacing,
        origin=plan.origin,
        direction=plan.direction,
        source=source or _series_ref(plan.frames),
        metadata=_metadata(plan.frames, rgb),
        warnings=warnings,
    )


# --- filling the array --------------------------------------------------------------------------
@dataclass(frozen=True)
class _Task:
    path: str
    items: tuple[tuple[FrameRecord, int], ...]  # (frame, slot)


def _fill(
    plan: StackPlan, dtype: np.dtype, workers: int | None
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """The acquired slices in `dtype`, plus colour; None when a value does not fit `dtype`."""
    first = plan.frames[0]
    depth, rows, columns = plan.acquired_depth, first.rows, first.columns
    array = np.empty((depth, rows, columns), dtype)
    rgb = None
    if first.samples_per_pixel > 1:
        rgb = np.zeros((depth, rows, columns, first.samples_per_pixel), stored_dtype(first))
    by_path: dict[str, list[tuple[FrameRecord, int]]] = defaultdict(list)
    for frame, slot in zip(plan.frames, plan.slot):
        by_path[frame.path].append((frame, slot))
    tasks = [_Task(path, tuple(items)) for path, items in by_path.items()]
    n_workers = workers or min(16, max(2, (os.cpu_count() or 2) * 2))
    chunks = _chunks(tasks, n_workers * 4)

    def run(chunk: list[_Task]) -> bool:
        return all(_fill_file(task, array, rgb) for task in chunk)

    if len(chunks) == 1 or n_workers == 1:
        fits = all(run(chunk) for chunk in chunks)
    else:
        with ThreadPoolExecutor(n_workers) as pool:
            fits = all(list(pool.map(run, chunks)))
    if not fits:
        return None
    if plan.missing_slots:
        present = sorted(set(plan.slot))
        fill = min(array[k].min() for k in present)
        array[plan.missing_slots] = fill
    return array, rgb


def _chunks(tasks: list[_Task], count: int) -> list[list[_Task]]:
    size = max(1, -(-len(tasks) // max(1, count)))
    return [tasks[i : i + size] for i in range(0, len(tasks), size)]


def _fill_file(task: _Task, array: np.ndarray, rgb: np.ndarray | None) -> bool:
    """Read one file's frames into their slots; False when a value does not fit the dtype."""
    frames = [frame for frame, _ in task.items]
    native = rgb is None and all(frame.pixel_data_offset is not None for frame in frames)
    if native:
        fd = open_for_pixels(task.path)
        try:
            for frame, slot in task.items:
                target = array[slot]
                raw_type = stored_dtype(frame)
                if raw_type.itemsize == array.itemsize and array.dtype.kind == "i":
                    raw = target.view(raw_type)  # read straight into the volume
                else:
                    raw = np.empty((frame.rows, frame.columns), raw_type)
                read_native_into(fd, frame, raw)
                _fix_stored_bits(raw, frame)
                if not _finish(raw, target, frame):
                    return False
        finally:
            os.close(fd)
        return True
    decoded = decode_frames(task.path, frames)
    for (frame, slot), values in zip(task.items, decoded):
        if values.shape[:2] != (frame.rows, frame.columns):
            raise DicomProblem(
                task.path,
                f"decoded frame {frame.frame_index + 1} is {values.shape}, the header says "
                f"{frame.rows}x{frame.columns}; the file changed since indexing?",
            )
        if rgb is not None:
            rgb[slot] = values.reshape(rgb.shape[1:])
            luma = values.reshape(frame.rows, frame.columns, -1)[..., :3] @ LUMA
            values = np.rint(luma).astype(np.int64)  # whole numbers: int16 when they fit
        if not _finish(values, array[slot], frame):
            return False
    return True


def _fix_stored_bits(raw: np.ndarray, frame: FrameRecord) -> None:
    """Drop bits above BitsStored (overlays, garbage) and sign-extend signed stored values."""
    unused = raw.dtype.itemsize * 8 - frame.bits_stored
    if unused <= 0 or frame.bits_stored <= 0:
        return
    if raw.dtype.kind == "i":
        np.left_shift(raw, unused, out=raw)
        np.right_shift(raw, unused, out=raw)  # arithmetic shift: sign-extends
    else:
        np.bitwise_and(raw, (1 << frame.bits_stored) - 1, out=raw)


def _finish(raw: np.ndarray, target: np.ndarray, frame: FrameRecord) -> bool:
    """Rescale, invert MONOCHROME1 and replace padding from `raw` into `target` (may alias)."""
    slope, intercept = float(frame.rescale_slope), float(frame.rescale_intercept)
    mask = None
    if frame.pixel_padding_value is not None and raw.dtype.kind in "iu":
        pad = np.array(frame.pixel_padding_value).astype(raw.dtype)
        mask = raw == pad
        if not mask.any():
            mask = None
    invert = frame.photometric == "MONOCHROME1"
    if target.dtype.kind == "i":
        if raw.dtype.kind == "f":
            return False
        values = raw[~mask] if mask is not None else raw
        lo, hi = (int(values.min()), int(values.max())) if values.size else (0, 0)
        a, b = sorted((lo * slope + intercept, hi * slope + intercept))
        if invert:
            total = _monochrome1_sum(frame)
            a, b = total - b, total - a
        if a < INT16.min or b > INT16.max:
            return False
        # Modular int16 arithmetic is exact because every result is known to fit.
        if not np.shares_memory(raw, target):
            np.copyto(target, raw, casting="unsafe")
        work = raw if np.shares_memory(raw, target) else target
        if slope != 1:
            np.multiply(work, _wrap(slope, work.dtype), out=work)
        if intercept != 0:
            np.add(work, _wrap(intercept, work.dtype), out=work)
        if invert:
            np.subtract(_wrap(_monochrome1_sum(frame), work.dtype), work, out=work)
    else:
        np.multiply(raw, slope, out=target, casting="unsafe")
        if intercept != 0:
            np.add(target, intercept, out=target, casting="unsafe")
        if invert:
            np.subtract(_monochrome1_sum(frame), target, out=target, casting="unsafe")
    if mask is not None:
        target[mask] = padding_value(frame)
    return True


def _wrap(value: float, dtype: np.dtype) -> np.generic:
    """An integer scalar of `dtype`, wrapped modulo its width (for exact modular arithmetic)."""
    return np.array(int(value), dtype=np.int64).astype(dtype)[()]


def _monochrome1_sum(frame: FrameRecord) -> float:
    """min + max of the rescaled stored range: v -> sum - v inverts onto the same range."""
    bits = frame.bits_stored or frame.bits_allocated
    if frame.pixel_representation == 1:
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        lo, hi = 0, 2**bits - 1
    return (lo + hi) * float(frame.rescale_slope) + 2 * float(frame.rescale_intercept)


def padding_value(frame: FrameRecord) -> int:
    """What padded pixels become: air (-1024 HU) in CT, 0 otherwise."""
    return CT_PADDING_HU if frame.units == "HU" else OTHER_PADDING


def _check_layout(frames: list[FrameRecord]) -> None:
    """Frames of one volume must share how their pixels are stored."""
    first = frames[0]
    layout = (first.samples_per_pixel, first.bits_allocated)
    for frame in frames[1:]:
        if (frame.samples_per_pixel, frame.bits_allocated) != layout:
            raise DicomProblem(
                frame.path,
                f"stores {frame.samples_per_pixel} sample(s) of {frame.bits_allocated} bits per "
                f"pixel but {first.path} stores {layout[0]} of {layout[1]}: not one volume",
            )


# --- regular grid -------------------------------------------------------------------------------
def _onto_grid(
    plan: StackPlan, array: np.ndarray, rgb: np.ndarray | None, warnings: list[str]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply the plan's in-plane shifts (tilt) and slice resampling (non-uniform spacing)."""
    if plan.regular:
        return array, rgb
    if rgb is not None:
        warnings.append("colour dropped: only the luminance is resampled onto the regular grid")
        rgb = None
    fill = float(array.min())
    if plan.shifts is not None:
        array = _shift_slices(plan, array, fill)
    if plan.resample_k is not None:
        array = _resample_slices(array, plan.resample_k)
    return array, rgb


def _shift_slices(plan: StackPlan, array: np.ndarray, fill: float) -> np.ndarray:
    from scipy import ndimage

    _, rows, columns = plan.shape
    shifted = np.empty((array.shape[0], rows, columns), array.dtype)
    shifted[...] = np.asarray(fill).astype(array.dtype)
    for slot, (dx, dy) in zip(plan.slot, plan.shifts):  # type: ignore[arg-type]
        moved = ndimage.affine_transform(
            array[slot].astype(np.float32),
            np.eye(2),
            offset=(-dy, -dx),
            output_shape=(rows, columns),
            order=1,
            mode="constant",
            cval=fill,
        )
        shifted[slot] = _cast(moved, array.dtype)
    return shifted


def _resample_slices(array: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Linear interpolation along k: output slice n lies at acquired index positions[n]."""
    out = np.empty((len(positions), *array.shape[1:]), array.dtype)
    top = array.shape[0] - 1
    for n, at in enumerate(positions):
        k0 = min(int(np.floor(at)), top)
        k1 = min(k0 + 1, top)
        w = float(at - k0)
        if w <= 1e-6 or k0 == k1:
            out[n] = array[k0]
        else:
            out[n] = _cast((1 - w) * array[k0].astype(np.float32) + w * array[k1], array.dtype)
    return out


def _cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.rint(values).astype(dtype) if np.dtype(dtype).kind in "iu" else values.astype(dtype)


# --- provenance ---------------------------------------------------------------------------------
def _series_ref(frames: list[FrameRecord]) -> SeriesRef:
    first = frames[0]
    return SeriesRef(
        series_uid=first.series_uid,
        study_uid=first.study_uid,
        modality=first.modality,
        sop_class_uid=first.sop_class_uid,
        instance_uids=tuple(dict.fromkeys(f.sop_instance_uid for f in frames)),
        paths=tuple(dict.fromkeys(f.path for f in frames)),
    )


def _metadata(frames: list[FrameRecord], rgb: np.ndarray | None) -> dict:
    first = frames[0]
    center, width = first.window_center, first.window_width
    inverted = first.photometric == "MONOCHROME1"
    if inverted and center is not None:
        center = _monochrome1_sum(first) - center
    metadata: dict = {
        "modality": first.modality,
        "units": first.units,
        "window_center": center,
        "window_width": width,
        "photometric": first.photometric,
        "inverted_monochrome1": inverted,
        "slice_thickness": first.slice_thickness,
    }
    if any(f.pixel_padding_value is not None for f in frames):
        metadata["padding_value"] = padding_value(first)
    if rgb is not None:
        metadata["rgb"] = rgb
    return metadata
