"""Running a bundle's own transforms on a series: preprocessing, inferer settings,
postprocessing, and the way back onto the series' exact grid.

A model-zoo bundle says how its network must be fed: ``preprocessing`` (orientation, spacing,
intensity window...), ``inferer`` (window size, overlap, batch) and ``postprocessing``
(activation, `Invertd` back to the input grid, argmax, saving). Its weights mean nothing with
other preprocessing, so an analysis that runs a user's bundle applies these, not its own:

    pre = preprocess_series(bundle, ctx.volume)        # None when the bundle has none
    settings = window_settings(bundle, pre.spatial_shape, defaults)
    logits = sliding_window(bundle.network, pre.network_input(), settings.roi_size, ...)
    post = postprocess_to_source(bundle, pre, logits[0], ctx.volume)   # (C, z, y, x) arrays

The series enters as a channel-first MetaTensor with its RAS affine, as MONAI's `LoadImaged` +
`EnsureChannelFirstd` would give it, so loader steps are skipped (the host has loaded the
series). Writer steps (`SaveImaged`) are skipped: results go through the host's writers. The
prediction is brought back with the bundle's own `Invertd` when its postprocessing has one, else
with `Invertd` over the applied preprocessing, else (steps MONAI cannot invert) resampled from
its own grid onto the series' grid. Every step applied or skipped is listed, so the results can
say which preprocessing made them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workstation.models.errors import BundleError
from workstation.models.quiet import library_messages_to_log

LOADER_STEPS = ("LoadImage", "LoadImaged", "LoadImageD", "LoadImageDict")
WRITER_STEPS = ("SaveImage", "SaveImaged", "SaveImageD", "SaveImageDict")
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class PreprocessedSeries:
    """The series after the bundle's preprocessing. `data["image"]` is a (C, *spatial)
    MetaTensor carrying MONAI's record of what was applied (what `Invertd` undoes);
    `transform` is the composed steps that ran; `applied` and `skipped` describe them."""

    data: dict[str, Any]
    transform: Any
    applied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def image(self) -> Any:
        return self.data["image"]

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.image.shape[1:])

    def network_input(self) -> Any:
        """(1, C, *spatial) float32 plain tensor, what `sliding_window` takes."""
        return self.image.as_tensor().float()[None]

    def describe(self) -> str:
        """One line for the results: which preprocessing made them."""
        text = "; ".join(self.applied) or "no steps"
        if self.skipped:
            text += f" (not applied: {', '.join(self.skipped)})"
        return text


@dataclass(frozen=True)
class WindowSettings:
    """Sliding-window settings, in voxels of the network grid, axis order of the tensor."""

    roi_size: tuple[int, ...]
    sw_batch_size: int
    overlap: float
    mode: str = "gaussian"
    sigma_scale: float = 0.125
    padding_mode: str = "constant"
    cval: float = 0.0
    source: str = "defaults"

    def describe(self) -> str:
        roi = "x".join(str(n) for n in self.roi_size)
        return (
            f"{self.source}: window {roi}, overlap {self.overlap:g}, "
            f"{self.sw_batch_size} per batch, {self.mode} blending"
        )


def series_metatensor(volume: Any) -> Any:
    """(1, i, j, k) float32 MetaTensor with the volume's RAS affine: what `LoadImaged` +
    `EnsureChannelFirstd` make of the same series saved as NIfTI."""
    import torch
    from monai.data import MetaTensor

    affine = torch.as_tensor(np.asarray(volume.ras_affine(), dtype=np.float64))
    array = np.ascontiguousarray(np.asarray(volume.array).transpose(2, 1, 0), dtype=np.float32)
    meta = {
        "affine": affine,
        "original_affine": affine.clone(),
        "spatial_shape": np.asarray(array.shape),
        "original_channel_dim": 0,
        "space": "RAS",
        "filename_or_obj": str(volume.metadata.get("series_description") or "series"),
    }
    return MetaTensor(torch.from_numpy(array)[None], meta=meta)


def describe_step(step: Any) -> str:
    """A transform as one short phrase, with the settings that change what the network sees."""
    name = type(step).__name__
    details: list[str] = []
    for attribute, label in (
        ("pixdim", "pixdim"),
        ("axcodes", "axcodes"),
        ("spatial_size", "size"),
        ("roi_size", "size"),
    ):
        owner = _inner(step, attribute)
        value = getattr(owner, attribute, None) if owner is not None else None
        if value is not None:
            details.append(f"{label}={_short(value)}")
    scaler = _inner(step, "a_min")
    if scaler is not None and getattr(scaler, "a_min", None) is not None:
        details.append(
            f"{_short(scaler.a_min)}..{_short(scaler.a_max)} -> "
            f"{_short(scaler.b_min)}..{_short(scaler.b_max)}"
            + (", clipped" if getattr(scaler, "clip", False) else "")
        )
    return f"{name}({', '.join(details)})" if details else name


def _inner(step: Any, attribute: str) -> Any:
    """The object holding `attribute`: the step itself or the array transform a dictionary
    transform wraps (MONAI keeps it as e.g. `spacing_transform` or `scaler`)."""
    if hasattr(step, attribute):
        return step
    for value in vars(step).values() if hasattr(step, "__dict__") else ():
        if hasattr(value, attribute) and not isinstance(value, (list, tuple, dict)):
            return value
    return None


def _short(value: Any) -> str:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return "x".join(_short(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def bundle_steps(transform: Any) -> list[Any]:
    """The flat list of steps of a bundle's transform entry: a Compose (nested ones too), a
    list, one transform, or nothing (None)."""
    from monai.transforms import Compose

    if transform is None:
        return []
    if isinstance(transform, Compose):
        return list(transform.flatten().transforms)
    if isinstance(transform, (list, tuple)):
        return [step for item in transform for step in bundle_steps(item)]
    return [transform]


@contextmanager
def _scope(bundle: Any) -> Iterator[None]:
    """The bundle's import scope (its scripts/ package), with MONAI's chatter sent to the log."""
    imports = getattr(bundle, "imports", None)
    with imports.scope() if imports is not None else nullcontext(), library_messages_to_log():
        yield


def _bundle_name(bundle: Any) -> str:
    meta = getattr(bundle, "metadata", None)
    name = getattr(meta, "name", "") or getattr(bundle, "path", "bundle")
    return f"'{name}' ({bundle.path})"


def preprocess_series(bundle: Any, volume: Any, key: str = "image") -> PreprocessedSeries | None:
    """Apply the bundle's ``preprocessing`` to `volume` (None when the bundle defines none).

    Loader steps are skipped (the series is handed over already loaded, channel first, with its
    affine). A step that fails raises `BundleError` naming the bundle, the step and the series
    shape, not a traceback from inside MONAI."""
    from monai.transforms import Compose

    if getattr(bundle, "preprocessing", None) is None:
        return None
    steps = bundle_steps(bundle.preprocessing)
    kept = [step for step in steps if type(step).__name__ not in LOADER_STEPS]
    skipped = [describe_step(step) for step in steps if type(step).__name__ in LOADER_STEPS]
    transform = Compose(kept)
    data = {key: series_metatensor(volume)}
    for step in kept:
        try:
            with _scope(bundle):
                data = step(data)
        except Exception as error:
            raise BundleError(
                f"bundle {_bundle_name(bundle)}: its preprocessing step {type(step).__name__} "
                f"failed on this series ({' x '.join(str(n) for n in volume.array.shape)} "
                f"voxels): {type(error).__name__}: {_first_line(error)}"
            ) from None
    if key not in data or getattr(data[key], "ndim", 0) < 2:
        raise BundleError(
            f"bundle {_bundle_name(bundle)}: its preprocessing did not give a channel-first "
            f"'{key}' image"
        )
    return PreprocessedSeries(data, transform, [describe_step(s) for s in kept], skipped)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else "")[:300]


def window_settings(
    bundle: Any, spatial_shape: Sequence[int], defaults: WindowSettings
) -> WindowSettings:
    """The bundle's ``inferer`` settings: a `SlidingWindowInferer`'s window, overlap, batch and
    blending; a `SimpleInferer` runs the whole image as one window. Anything else (or no
    inferer) keeps `defaults`."""
    inferer = getattr(bundle, "inferer", None)
    name = type(inferer).__name__ if inferer is not None else ""
    if inferer is not None and hasattr(inferer, "roi_size") and hasattr(inferer, "overlap"):
        roi = inferer.roi_size
        roi = [int(roi)] * len(spatial_shape) if isinstance(roi, int) else [int(r) for r in roi]
        # MONAI: a non-positive ROI entry means "the whole image along that axis"
        roi = [n if r <= 0 else r for r, n in zip(roi, spatial_shape, strict=False)]
        overlap = inferer.overlap
        overlap = float(overlap[0] if isinstance(overlap, (list, tuple)) else overlap)
        mode = getattr(inferer, "mode", "constant")
        mode = getattr(mode, "value", mode)
        padding = getattr(inferer, "padding_mode", "constant")
        return WindowSettings(
            tuple(roi),
            max(1, int(getattr(inferer, "sw_batch_size", 1))),
            overlap,
            str(mode),
            float(_first(getattr(inferer, "sigma_scale", 0.125))),
            str(getattr(padding, "value", padding)),
            float(getattr(inferer, "cval", 0.0)),
            source=f"the bundle's {name}",
        )
    if name == "SimpleInferer":
        return WindowSettings(
            tuple(int(n) for n in spatial_shape), 1, 0.0, "constant", source="the bundle's "
            "SimpleInferer (whole image at once)"
        )  # fmt: skip
    if inferer is not None:
        return WindowSettings(
            defaults.roi_size,
            defaults.sw_batch_size,
            defaults.overlap,
            defaults.mode,
            defaults.sigma_scale,
            source=f"the analysis's settings (the bundle's {name} is not a sliding window)",
        )
    return defaults


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, (list, tuple)) else value


@dataclass
class SourceGridPrediction:
    """A prediction on the series' grid: `array` is (C, z, y, x) float32; `steps` lists the
    postprocessing applied, `way_back` how it reached the series' grid."""

    array: np.ndarray
    steps: list[str]
    skipped: list[str]
    way_back: str

    def describe(self) -> str:
        text = "; ".join(self.steps) or "none"
        if self.skipped:
            text += f" (not applied: {', '.join(self.skipped)})"
        return f"postprocessing: {text}; back onto the series' grid by {self.way_back}"


def postprocess_to_source(
    bundle: Any,
    pre: PreprocessedSeries,
    prediction: Any,
    volume: Any,
    *,
    key: str = "pred",
    run_postprocessing: bool = True,
    nearest: bool | None = None,
) -> SourceGridPrediction:
    """`prediction` ((C, *spatial) on the preprocessed grid) through the bundle's
    ``postprocessing`` (writer steps skipped), then onto `volume`'s exact grid.

    `nearest`: how the way back interpolates when the postprocessing did not bring it back
    itself; None picks nearest for a single channel of whole numbers (labels), else linear."""
    import torch
    from monai.data import MetaTensor

    image = pre.image
    values = prediction.detach().float().cpu() if hasattr(prediction, "detach") else prediction
    values = torch.as_tensor(np.asarray(values) if not torch.is_tensor(values) else values)
    predicted = MetaTensor(values, meta=dict(image.meta))
    data = {**pre.data, key: predicted}
    applied: list[str] = []
    skipped: list[str] = []
    post = getattr(bundle, "postprocessing", None)
    if run_postprocessing and post is not None:
        for step in bundle_steps(post):
            name = type(step).__name__
            if name in WRITER_STEPS:
                skipped.append(f"{name} (the workstation writes the results)")
                continue
            try:
                with _scope(bundle):
                    data = step(data)
            except Exception as error:
                raise BundleError(
                    f"bundle {_bundle_name(bundle)}: its postprocessing step {name} failed: "
                    f"{type(error).__name__}: {_first_line(error)}"
                ) from None
            applied.append(describe_step(step))
    result = data[key]
    if _on_grid(result, volume):
        way = "the bundle's Invertd" if any(s.startswith("Invertd") for s in applied) else "-"
        if way == "-":
            way = "identity (the preprocessing kept the series' grid)"
        return SourceGridPrediction(_to_zyx(result), applied, skipped, way)
    if nearest is None:
        array = _plain(result)
        nearest = array.shape[0] == 1 and bool(np.all(np.mod(array, 1.0) == 0.0))
    inverted = _invert(pre, result, key, bool(nearest))
    if inverted is not None and _on_grid(inverted, volume):
        method = "nearest neighbour" if nearest else "linear interpolation"
        return SourceGridPrediction(
            _to_zyx(inverted), applied, skipped, f"MONAI Invertd ({method})"
        )
    return SourceGridPrediction(
        _resample_to_source(result, volume, bool(nearest)),
        applied,
        skipped,
        "resampling from the network grid (the preprocessing is not invertible)",
    )


def _plain(tensor: Any) -> np.ndarray:
    if hasattr(tensor, "detach"):
        return tensor.detach().float().cpu().numpy()
    return np.asarray(tensor, dtype=np.float32)


def _affine(tensor: Any) -> np.ndarray | None:
    affine = getattr(tensor, "affine", None)
    return None if affine is None else np.asarray(affine, dtype=np.float64)


def _on_grid(tensor: Any, volume: Any) -> bool:
    """Whether a (C, i, j, k) MetaTensor lies exactly on `volume`'s voxels."""
    shape = tuple(int(n) for n in tensor.shape[1:])
    if shape != tuple(int(n) for n in volume.array.shape[::-1]):
        return False
    affine = _affine(tensor)
    if affine is None:
        return False
    target = np.asarray(volume.ras_affine(), dtype=np.float64)
    scale = float(np.abs(target[:3, :3]).max()) or 1.0
    return bool(np.allclose(affine, target, atol=1e-4 * scale))


def _to_zyx(tensor: Any) -> np.ndarray:
    return np.ascontiguousarray(_plain(tensor).transpose(0, 3, 2, 1), dtype=np.float32)


def _invert(pre: PreprocessedSeries, result: Any, key: str, nearest: bool) -> Any:
    """MONAI's `Invertd` over the applied preprocessing; None when nothing was recorded."""
    from monai.data import MetaTensor
    from monai.transforms import Invertd

    image = pre.image
    if not getattr(image, "applied_operations", None):
        return None
    value = result if isinstance(result, MetaTensor) else MetaTensor(result, meta=image.meta)
    inverter = Invertd(keys=key, transform=pre.transform, orig_keys="image", nearest_interp=nearest)
    try:
        return inverter({key: value, "image": image})[key]
    except Exception:  # steps MONAI cannot undo: the caller resamples instead
        return None


def _resample_to_source(result: Any, volume: Any, nearest: bool) -> np.ndarray:
    """Channels on the grid the prediction carries (its RAS affine), resampled onto `volume`'s
    grid by the host's resampling (border values past the edge)."""
    from workstation.core.volume import Geometry, Volume

    affine = _affine(result)
    if affine is None:
        raise BundleError(
            "the bundle's prediction carries no affine, so it cannot be put back on the series"
        )
    lps = _LPS_TO_RAS @ affine
    linear = lps[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    channels = _plain(result)
    i, j, k = channels.shape[1:]
    grid = Geometry((k, j, i), tuple(spacing), tuple(lps[:3, 3]), tuple((linear / spacing).ravel()))
    # one voxel more on every side repeating the edge, so the series' border voxels (up to half
    # a network voxel past the network grid's hull) take edge values, not zeros
    padded_origin = tuple(grid.index_to_world((-1.0, -1.0, -1.0)))
    out = []
    for channel in channels:
        padded = np.pad(np.ascontiguousarray(channel.transpose(2, 1, 0)), 1, mode="edge")
        edge = Volume(padded, grid.spacing, padded_origin, grid.direction_matrix)
        out.append(edge.resample_to(volume.geometry, order=0 if nearest else 1).array)
    return np.stack(out).astype(np.float32)
