"""Device and numeric precision for inference: autocast, channels-last, worker counts.

torch is imported inside the functions, so importing this module stays cheap.

Precision choices (the `precision` parameter a plugin exposes to the user):
- "fp32": full precision everywhere.
- "fp16" / "bf16": CUDA autocast in that type; "bf16" also works on CPU: about 2x faster for a
  3D UNet sliding window on CPUs with native bf16 (AVX512-BF16 or AMX), but many times slower
  on CPUs without it (measured: 37x slower on an AVX2-only CPU), so it is only used when asked
  for and a warning is logged where the CPU lacks it (`cpu_has_fast_bf16`). "fp16" on CPU falls
  back to fp32.
- "auto": bf16 on CUDA GPUs that support it, else fp16 on CUDA; fp32 on CPU (safe default).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def as_device(device: Any) -> torch.device:
    import torch

    return device if isinstance(device, torch.device) else torch.device(device or "cpu")


def resolve_precision(device: Any, precision: str = "auto") -> str:
    """The precision actually used on `device`: "fp32", "fp16" or "bf16"."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    kind = as_device(device).type
    if kind == "cuda":
        if precision == "auto":
            import torch

            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return precision
    if precision == "bf16":
        if not cpu_has_fast_bf16():
            _warn_slow_cpu_bf16()
        return "bf16"
    return "fp32"  # auto and fp16 on CPU: fp16 CPU kernels are slow or missing


@functools.cache
def _warn_slow_cpu_bf16() -> None:  # once per process, not once per window batch
    logging.getLogger("workstation.models").warning(
        "bf16 on this CPU (no AVX512-BF16/AMX) is much slower than fp32; use fp32 here"
    )


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """True when the CPU has native bf16 arithmetic (Linux: avx512_bf16 or amx_bf16 flags)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            flags = set(info.read().split())
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def autocast_context(device: Any, precision: str = "auto") -> contextlib.AbstractContextManager:
    """A context manager that runs the enclosed model calls in the chosen precision."""
    import torch

    resolved = resolve_precision(device, precision)
    if resolved == "fp32":
        return contextlib.nullcontext()
    dtype = torch.float16 if resolved == "fp16" else torch.bfloat16
    return torch.autocast(device_type=as_device(device).type, dtype=dtype)


def prefers_channels_last(device: Any, precision: str = "auto") -> bool:
    """Channels-last helps convolutions on CUDA tensor cores (half precision); elsewhere it
    mostly costs layout conversions, so it is used only there."""
    return as_device(device).type == "cuda" and resolve_precision(device, precision) != "fp32"


def to_channels_last(value: Any) -> Any:
    """Network or tensor in channels-last layout (4D: channels_last, 5D: channels_last_3d)."""
    import torch

    if isinstance(value, torch.Tensor):
        if value.dim() == 5:
            return value.contiguous(memory_format=torch.channels_last_3d)
        if value.dim() == 4:
            return value.contiguous(memory_format=torch.channels_last)
        return value
    formats = {p.dim() for p in value.parameters()}
    fmt = torch.channels_last_3d if 5 in formats else torch.channels_last
    return value.to(memory_format=fmt)


def prepare_network(network: Any, device: Any, precision: str = "auto") -> Any:
    """Move to `device`, eval mode, channels-last where it helps. Returns the network."""
    network = network.to(as_device(device)).eval()
    if prefers_channels_last(device, precision):
        network = to_channels_last(network)
    return network


def suited_num_workers(requested: int | None = None) -> int:
    """Data-loader workers for this machine: 0 on small machines (and in workers that must not
    fork), else at most 2; never more than the bundle asked for."""
    cores = os.cpu_count() or 1
    suited = 0 if cores <= 2 else min(2, cores)
    return suited if requested is None else max(0, min(int(requested), suited))
