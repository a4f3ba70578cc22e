"""Sliding-window inference with progress, cancellation and a CUDA out-of-memory fallback.

Wraps `monai.inferers.sliding_window_inference`. When the GPU runs out of memory the same call is
retried with half the window batch (down to 1), then with windows still computed on the GPU but
stitched into an output kept in CPU memory (``sw_device=cuda, device=cpu``), instead of failing;
before each retry the models the cache keeps idle on that device are dropped.
Every attempt gives the same result: the window batch size does not change the blended output.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

from workstation.models.errors import InferenceCancelled, ModelError
from workstation.models.precision import (
    as_device,
    autocast_context,
    prefers_channels_last,
    to_channels_last,
)

log = logging.getLogger("workstation.models")

ProgressCallback = Callable[[float], Any]


def _flag(value: Any) -> bool:
    """A cancellation flag read now: an Event, a callable returning bool, or a bool."""
    if hasattr(value, "is_set"):
        return bool(value.is_set())
    if callable(value):
        return bool(value())
    return bool(value)


def _cancel_check(cancelled: Any, context: Any) -> Callable[[], bool]:
    """`cancelled` (callable or Event), else the run context's `cancelled` read at each batch."""
    if cancelled is not None:
        if not (callable(cancelled) or hasattr(cancelled, "is_set")):
            raise TypeError(
                "cancelled must be a callable or an Event (a plain bool cannot change during "
                f"the run), got {type(cancelled).__name__}; or pass context=ctx"
            )
        return lambda: _flag(cancelled)
    if context is not None and hasattr(context, "cancelled"):
        return lambda: _flag(context.cancelled)
    return lambda: False


def _as_float32(output: Any) -> Any:
    """Stitch in float32 whatever the autocast dtype: tensors, tuples or dicts of tensors."""
    if isinstance(output, tuple | list):
        return type(output)(_as_float32(item) for item in output)
    if isinstance(output, dict):
        return {key: _as_float32(item) for key, item in output.items()}
    if hasattr(output, "is_floating_point") and output.is_floating_point():
        return output.float()
    return output


def fallback_plan(sw_batch_size: int, device: Any) -> list[tuple[int, str]]:
    """Attempts in order: (window batch size, device the output is stitched on)."""
    device = as_device(device)
    sizes, size = [], max(1, int(sw_batch_size))
    while True:
        sizes.append(size)
        if size == 1:
            break
        size = max(1, size // 2)
    plan = [(size, str(device)) for size in sizes]
    if device.type != "cpu":
        plan.append((1, "cpu"))
    return plan


def count_windows(spatial_shape: Sequence[int], roi_size: Sequence[int], overlap: Any) -> int:
    """How many windows MONAI places on one image (after padding up to the ROI size); the same
    rule as MONAI's scan interval: ``max(1, int(roi * (1 - overlap)))`` unless roi == size."""
    overlaps = list(overlap) if isinstance(overlap, Sequence) else [overlap] * len(roi_size)
    count = 1
    for size, roi, lap in zip(spatial_shape, roi_size, overlaps):
        size = max(int(size), int(roi))
        interval = int(roi) if size == roi else max(1, int(roi * (1 - float(lap))))
        count *= math.ceil((size - roi) / interval) + 1 if size > roi else 1
    return count


def sliding_window(
    network: Callable[[Any], Any],
    image_tensor: Any,
    roi_size: Sequence[int] | int,
    *,
    sw_batch_size: int = 4,
    overlap: float = 0.25,
    mode: str = "gaussian",
    device: Any = None,
    precision: str = "auto",
    progress: ProgressCallback | None = None,
    cancelled: Any = None,
    context: Any = None,
    on_retry: Callable[[str], Any] | None = None,
    progress_range: tuple[float, float] = (0.0, 1.0),
    progress_message: str = "sliding-window inference",
    sigma_scale: float = 0.125,
    padding_mode: str = "constant",
    cval: float = 0.0,
) -> Any:
    """Run `network` over `image_tensor` ([N, C, *spatial] or [C, *spatial]) window by window.

    - `device`: where the network runs (default: the context's, else CPU); the image may stay
      on CPU, windows are moved there.
    - `precision`: see `precision.resolve_precision`; outputs are stitched in float32.
    - `progress(fraction)`: called after each window batch with the share of windows done,
      mapped into `progress_range` (the part of the whole run this call is), never lower than
      a fraction already reported (after an out-of-memory retry it pauses, not runs back).
    - `cancelled`: callable or Event; checked before each batch, raises `InferenceCancelled`.
    - `context`: a plugin's RunContext; supplies `device`, `progress` (as
      ``ctx.progress(fraction, progress_message)``) and `cancelled` (read at every batch) when
      those arguments are not given.
    - `on_retry(message)`: told when an out-of-memory error forced a smaller batch or CPU
      stitching (the message is also logged on the "workstation.models" logger).
    Returns the blended output, on `device`, or on CPU if CPU stitching was needed.
    """
    import torch
    from monai.inferers import sliding_window_inference

    if context is not None:
        device = device if device is not None else getattr(context, "device", None)
        if progress is None and getattr(context, "progress", None) is not None:
            report = context.progress
            progress = lambda fraction: report(fraction, progress_message)  # noqa: E731
    low, high = (float(v) for v in progress_range)
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"progress_range must be 0 <= start <= end <= 1, got {progress_range}")
    reported = low
    run_device = as_device(device)
    if isinstance(roi_size, int):  # an int ROI needs a batched image to know the dimensions
        roi_size = [roi_size] * (image_tensor.dim() - 2)
    roi_size = [int(r) for r in roi_size]
    batched = image_tensor.dim() == len(roi_size) + 2
    if not batched and image_tensor.dim() != len(roi_size) + 1:
        raise ValueError(
            f"roi_size {roi_size} has {len(roi_size)} dimensions; the image of shape "
            f"{tuple(image_tensor.shape)} should be [N, C, *spatial] or [C, *spatial]"
        )
    inputs = image_tensor if batched else image_tensor.unsqueeze(0)
    is_cancelled = _cancel_check(cancelled, context)
    channels_last = prefers_channels_last(run_device, precision)
    windows = count_windows(inputs.shape[2:], roi_size, overlap) * inputs.shape[0]

    for attempt, (batch, stitch_device) in enumerate(fallback_plan(sw_batch_size, run_device)):
        total_calls = max(1, math.ceil(windows / batch))
        done = 0

        def predictor(window: Any, total_calls: int = total_calls) -> Any:
            nonlocal done, reported
            if is_cancelled():
                raise InferenceCancelled("inference cancelled by the user")
            if channels_last:
                window = to_channels_last(window)
            with autocast_context(run_device, precision):
                output = network(window)
            output = _as_float32(output)
            done += 1
            if progress is not None:
                reported = max(reported, low + (high - low) * min(1.0, done / total_calls))
                progress(reported)
            return output

        try:
            # inference mode, as a bare MONAI call runs it (no autograd bookkeeping per window);
            # the result is cloned out of it below, so callers may change it in place
            with torch.inference_mode():
                result = sliding_window_inference(
                    inputs,
                    roi_size,
                    batch,
                    predictor,
                    overlap=overlap,
                    mode=mode,
                    sigma_scale=sigma_scale,
                    padding_mode=padding_mode,
                    cval=cval,
                    sw_device=run_device,
                    device=torch.device(stitch_device),
                )
        except torch.OutOfMemoryError:
            pass  # handled below, once the traceback (holding the failed tensors) is released
        else:
            return (result if batched else result[0]).clone()
        from workstation.models.cache import model_cache

        model_cache().release_device(run_device)  # models kept idle on this device
        if run_device.type == "cuda":
            torch.cuda.empty_cache()
        plan = fallback_plan(sw_batch_size, run_device)
        if attempt + 1 >= len(plan):
            raise ModelError(
                f"out of GPU memory on {run_device} even with one window per batch"
                + (" and the output stitched in CPU memory" if run_device.type != "cpu" else "")
                + f"; use a smaller roi_size than {roi_size} or run on the CPU"
            )
        next_batch, next_stitch = plan[attempt + 1]
        message = (
            f"out of memory with {batch} windows per batch on {run_device}; retrying with "
            f"{next_batch} per batch, output stitched on {next_stitch}"
        )
        log.warning(message)
        if on_retry is not None:
            on_retry(message)
    raise AssertionError("unreachable")  # pragma: no cover
