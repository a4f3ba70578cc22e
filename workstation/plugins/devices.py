"""Choosing where an analysis runs: CUDA, then MPS, then CPU, unless the user says otherwise.

torch is imported only here, inside functions, and only for analyses that may use a GPU: a
"cpu" analysis (like a threshold segmentation) never pays for importing torch.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable

GPU_DEVICES = ("cuda", "mps")


class DeviceUnavailable(RuntimeError):
    """The analysis cannot run on any device the user allows; the run is refused before it
    starts."""


@functools.lru_cache(maxsize=1)
def available_gpus() -> tuple[str, ...]:
    """GPUs torch can use here ("cuda", "mps"); () without torch or a GPU."""
    try:
        import torch
    except ImportError:
        return ()
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return tuple(found)


def select_device(
    analysis_id: str,
    need: str,
    requested: str = "auto",
    probe: Callable[[], tuple[str, ...]] | None = None,
) -> str:
    """The device string for a run. `need` is the analysis's declared "cpu", "prefers_gpu" or
    "needs_gpu"; `requested` is "auto", "cpu", "cuda", "cuda:N" or "mps". `probe` lists the
    GPUs (default: `available_gpus` here; the isolated runner asks its worker, so the host
    process never imports torch); it is called only when a GPU could be used."""
    requested = (requested or "auto").strip().lower()
    if need == "cpu":
        if requested in ("auto", "cpu"):
            return "cpu"
        raise DeviceUnavailable(
            f"{analysis_id} runs on the CPU only; --device {requested} cannot be used"
        )
    if requested == "cpu":
        if need == "needs_gpu":
            raise DeviceUnavailable(f"{analysis_id} needs a GPU; it cannot run with --device cpu")
        return "cpu"
    gpus = (probe or available_gpus)()
    if requested == "auto":
        if gpus:
            return gpus[0]
        if need == "needs_gpu":
            raise DeviceUnavailable(
                f"{analysis_id} needs a GPU, and none is available here (no CUDA or MPS device "
                "visible to torch)"
            )
        return "cpu"
    kind = requested.split(":", 1)[0]
    if kind not in GPU_DEVICES:
        raise DeviceUnavailable(f"unknown device {requested!r}; use auto, cpu, cuda, cuda:N or mps")
    if kind not in gpus:
        raise DeviceUnavailable(
            f"--device {requested} was asked for, but no {kind} device is available"
        )
    return requested


def is_gpu(device: str) -> bool:
    return device.split(":", 1)[0] in GPU_DEVICES


class Slots:
    """One GPU job at a time per process; CPU jobs bounded by the cores."""

    def __init__(self, cpu_slots: int | None = None) -> None:
        self.gpu = threading.Lock()
        self.cpu = threading.BoundedSemaphore(cpu_slots or max(1, os.cpu_count() or 1))

    def for_device(self, device: str) -> threading.Lock | threading.BoundedSemaphore:
        return self.gpu if is_gpu(device) else self.cpu


DEFAULT_SLOTS = Slots()
