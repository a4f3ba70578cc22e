"""Running the restoration: weights -> networks, series -> restored series on the same grid.

`run(ctx)` is the analysis entry. `load_reconstruction_model`, `denoise_ct`, `reconstruct_mr`
and `quality` are usable on their own (the training command and the tests use them).

Slices are restored one by one along the volume's first array axis (the acquired slices of an
axial series), through the host's `sliding_window` (whole slices up to 256 x 256, overlapping
windows beyond, out-of-memory fallback on a GPU).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workstation.models import (
    BundleError,
    InferenceCancelled,
    cached_model,
    is_demo_weights,
    load_model,
    prepare_network,
    read_checkpoint_config,
    sliding_window,
)
from workstation.plugins.api import (
    Cancelled,
    DerivedVolume,
    HeatMap,
    InputRefused,
    Measurements,
    RunContext,
    RunRefused,
    Volume,
)
from workstation_monai_reconstruction import __version__
from workstation_monai_reconstruction.config import (
    ANALYSIS_ID,
    CT_OFFSET_HU,
    CT_SCALE_HU,
    DEMO_DESCRIPTION,
    DEMO_WEIGHTS,
    DIVISOR,
    default_model_config,
)
from workstation_monai_reconstruction.degrade import (
    Undersampled,
    data_consistency,
    simulate_low_dose,
    undersample,
)
from workstation_monai_reconstruction.network import build_networks

MAX_WINDOW = 256
MIN_SLICE_PIXELS = 2 * DIVISOR
"""Smallest slice edge the networks can restore: their deepest layer needs at least 2 x 2
pixels to normalise (a smaller slice is padded up to this window)."""
AIR_HU = -1024.0
"""The physical floor of CT numbers: restored CT is never darker than air."""
Progress = Callable[[float], Any]


class BundleNotSupported(BundleError, RunRefused):
    """A MONAI bundle folder was given: this analysis needs its own pair of networks. A
    refusal: nothing from the bundle ran."""


def demo_weights_path() -> Path:
    """The demo checkpoint shipped inside this package."""
    return Path(str(files("workstation_monai_reconstruction").joinpath(DEMO_WEIGHTS)))


@dataclass
class ReconstructionModel:
    """Both networks, ready for inference, and whether they are the demo weights."""

    networks: torch.nn.ModuleDict
    config: dict[str, Any]
    weights: Path
    demo: bool


def load_reconstruction_model(
    weights: str | Path | None = None,
    device: Any = "cpu",
    precision: str = "auto",
    *,
    store_dir: str | Path | None = None,
) -> ReconstructionModel:
    """The checkpoint the user chose (both networks, keys `ct_denoise.*` and `mr_kspace.*`, as
    `train` writes it), or the shipped demo weights when `weights` is None."""
    path = Path(weights) if weights is not None else demo_weights_path()
    if path.is_dir():
        raise BundleNotSupported(bundle_refusal(path))
    config = (
        read_checkpoint_config(path, default_model_config())
        if path.is_file()
        else default_model_config()
    )
    networks = build_networks(config)
    loaded = load_model(path, device, network=networks, store_dir=store_dir).network
    demo = is_demo_weights(path, config, demo_weights_path())
    return ReconstructionModel(prepare_network(loaded, device, precision), config, path, demo)


def bundle_refusal(path: Path) -> str:
    """Why a MONAI bundle folder cannot restore here (read from metadata.json only: nothing in
    the bundle runs, so it needs no trust to be refused)."""
    from workstation.models import read_metadata

    try:
        meta = read_metadata(path)
        name = f"'{meta.name}'{f' {meta.version}' if meta.version else ''} ({path})"
    except Exception:  # not even a readable bundle: the path alone names it
        name = str(path)
    return (
        f"the MONAI bundle {name} cannot be used by {ANALYSIS_ID}: this analysis needs its own "
        f"two restoring networks, ct_denoise and mr_kspace (residual 2-D MONAI UNets taking CT "
        f"as (HU + 1000) / 1000 and MR scaled per slice), in one checkpoint file as its "
        f"training command writes it (python -m workstation_monai_reconstruction.train). A "
        f"bundle's network works on its own preprocessed intensities, with no way back to HU "
        f"or MR signal. Give such a checkpoint with --weights, or leave --weights out for the "
        f"demo weights."
    )


def series_name(ctx: RunContext) -> str:
    """How a message names the input: its description, series UID, or file."""
    described = ctx.volume.metadata.get("series_description")
    if described:
        return str(described)
    if ctx.series is not None:
        return f"series {ctx.series.stack_id}"
    source = getattr(ctx.inputs, "source_path", None)
    return str(source) if source else "the series"


def check_slice_size(volume: Volume, name: str = "the series") -> None:
    """Refuse, naming the series and its size, slices smaller than the networks can restore."""
    slices, rows, columns = (int(n) for n in volume.array.shape)
    if min(rows, columns) < MIN_SLICE_PIXELS:
        described = name
        raise InputRefused(
            f"{described} is {rows} x {columns} pixels per slice ({slices} slices); "
            f"{ANALYSIS_ID} needs slices of at least {MIN_SLICE_PIXELS} x {MIN_SLICE_PIXELS} "
            f"pixels"
        )


def kept_reconstruction_model(
    weights: str | Path | None,
    device: Any = "cpu",
    precision: str = "auto",
    *,
    store_dir: str | Path | None = None,
    logger: Any = None,
) -> AbstractContextManager[ReconstructionModel]:
    """`load_reconstruction_model` through the host's model cache: the next run on unchanged
    weights, device and precision gets the same networks without reading the file again."""
    path = Path(weights) if weights is not None else demo_weights_path()
    return cached_model(
        path,
        device,
        precision,
        lambda: load_reconstruction_model(path, device, precision, store_dir=store_dir),
        namespace=ANALYSIS_ID,
        store_dir=store_dir,
        logger=logger,
    )


def _window(shape: tuple[int, ...]) -> list[int]:
    """Whole slices (rounded up to a multiple of DIVISOR, as the UNet's poolings need) up to
    MAX_WINDOW; larger slices go through overlapping windows."""
    return [min(MAX_WINDOW, -(-int(n) // DIVISOR) * DIVISOR) for n in shape]


def apply_network(
    network: torch.nn.Module,
    slices: torch.Tensor,
    *,
    device: Any = "cpu",
    precision: str = "auto",
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> torch.Tensor:
    """Run a restoring network over (N, H, W) slices in network units; returns (N, H, W)."""
    image = slices.float()[:, None]
    with torch.no_grad():
        out = sliding_window(
            network,
            image,
            _window(image.shape[2:]),
            sw_batch_size=8,
            overlap=0.25,
            mode="gaussian",
            device=device,
            precision=precision,
            progress=progress,
            cancelled=cancelled,
        )
    return out[:, 0].float().cpu()


def denoise_ct(hu: np.ndarray, model: ReconstructionModel, **options: Any) -> np.ndarray:
    """Denoised HU (float32) of `hu` ([z, y, x] or [n, y, x])."""
    x = (torch.from_numpy(np.asarray(hu, np.float32)) + CT_OFFSET_HU) / CT_SCALE_HU
    out = apply_network(model.networks["ct_denoise"], x, **options)
    return (out.numpy() * CT_SCALE_HU - CT_OFFSET_HU).astype(np.float32)


def _slice_scale(images: torch.Tensor) -> torch.Tensor:
    """Per-slice intensity scale (99th percentile), so any MR units enter the network near 1."""
    flat = images.reshape(images.shape[0], -1)
    return torch.quantile(flat, 0.99, dim=1).clamp_min(1e-6)[:, None, None]


def refine_mr(
    images: torch.Tensor,
    model: ReconstructionModel,
    measured: Undersampled | None = None,
    **options: Any,
) -> torch.Tensor:
    """Refine zero-filled (N, H, W) magnitude slices; with the `measured` k-space, the result is
    made consistent with it (sampled columns kept exactly as measured)."""
    scale = _slice_scale(images)
    refined = apply_network(model.networks["mr_kspace"], images / scale, **options) * scale
    refined = refined.clamp_min(0.0)
    if measured is not None:
        refined = data_consistency(refined, measured)
    return refined


def reconstruct_mr(
    clean: np.ndarray,
    model: ReconstructionModel,
    *,
    acceleration: float = 4,
    center_fraction: float = 0.08,
    mask: str = "equispaced",
    seed: int = 0,
    **options: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Undersample `clean` slices' k-space and reconstruct: (zero-filled, reconstructed)."""
    measured = undersample(
        torch.from_numpy(np.asarray(clean, np.float32)), acceleration, center_fraction, mask, seed
    )
    restored = refine_mr(measured.zero_filled, model, measured, **options)
    return measured.zero_filled.numpy(), restored.numpy()


def quality(reference: np.ndarray, image: np.ndarray) -> dict[str, float]:
    """PSNR (dB, over the whole volume) and SSIM (mean over slices) of `image` against
    `reference`, with the reference's value range as the data range (`monai.metrics`)."""
    from monai.metrics import PSNRMetric, SSIMMetric

    ref = torch.from_numpy(np.asarray(reference, np.float32))
    img = torch.from_numpy(np.asarray(image, np.float32))
    data_range = float(ref.max() - ref.min()) or 1.0
    psnr = PSNRMetric(max_val=data_range)(img[None, None], ref[None, None])
    result = {"psnr": float(psnr.mean())}
    if min(ref.shape[-2:]) >= 11:  # SSIM's 11-pixel window must fit in a slice
        ssim = SSIMMetric(spatial_dims=2, data_range=data_range)(img[:, None], ref[:, None])
        result["ssim"] = float(ssim.mean())
    return result


def choose_mode(mode: str, volume: Volume) -> str:
    """'auto' follows the modality: MR is reconstructed from k-space, anything else is treated
    as CT (values in HU) and denoised."""
    if mode != "auto":
        return mode
    return "mr_kspace" if str(volume.metadata.get("modality", "")).upper() == "MR" else "ct_denoise"


def _on_source(volume: Volume, values: np.ndarray) -> np.ndarray:
    """Restored values in the source's type: rounded and clipped for integer series."""
    dtype = volume.array.dtype
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype if np.issubdtype(dtype, np.floating) else np.float32)


def _derived(volume: Volume, values: np.ndarray, description: str, model: ReconstructionModel):
    derived = volume.with_array(_on_source(volume, values))
    derived.metadata.update(
        {
            "description": description,
            "analysis": ANALYSIS_ID,
            "analysis_version": __version__,
            "demo_weights": model.demo,
        }
    )
    return derived


def run(ctx: RunContext) -> list[DerivedVolume | HeatMap | Measurements]:
    """The analysis entry: restored series, difference map and quality figures."""
    p = ctx.params
    volume = ctx.volume
    check_slice_size(volume, series_name(ctx))
    mode = choose_mode(p["mode"], volume)
    ctx.progress(0.0, "loading the model")
    kept = kept_reconstruction_model(ctx.weights, ctx.device, p["precision"], logger=ctx.logger)
    with kept as model:
        return _restore(ctx, model, mode)


def _restore(
    ctx: RunContext, model: ReconstructionModel, mode: str
) -> list[DerivedVolume | HeatMap | Measurements]:
    p = ctx.params
    volume = ctx.volume
    ctx.check_cancelled()
    label = DEMO_DESCRIPTION if model.demo else f"weights: {model.weights.name}"
    options = {
        "device": ctx.device,
        "precision": p["precision"],
        "progress": lambda fraction: ctx.progress(0.1 + 0.75 * fraction, "restoring slices"),
        "cancelled": ctx.cancelled,
    }
    source = volume.array.astype(np.float32)
    simulate = bool(p["simulate"])
    units = "HU" if mode == "ct_denoise" else ""  # for the quality table
    ucum = "[hnsf'U]" if mode == "ct_denoise" else "1"  # the map's UCUM code: HU, or none
    try:
        if mode == "ct_denoise":
            what = "low-dose CT denoising"
            if simulate:
                given = simulate_low_dose(source, p["noise_hu"], ctx.seed)
                degradation = f"simulated low-dose noise of {p['noise_hu']:g} HU"
            else:
                given = source
            restored = np.maximum(denoise_ct(given, model, **options), np.float32(AIR_HU))
        else:
            what = "MR k-space reconstruction"
            if simulate:
                given, restored = reconstruct_mr(
                    source,
                    model,
                    acceleration=p["acceleration"],
                    center_fraction=p["center_fraction"],
                    mask=p["mask"],
                    seed=ctx.seed,
                    **options,
                )
                degradation = (
                    f"simulated {p['acceleration']}x {p['mask']} k-space undersampling "
                    f"({p['center_fraction']:g} centre), zero-filled"
                )
            else:  # magnitude images carry no k-space: refine the image as given
                given = source
                restored = refine_mr(torch.from_numpy(source), model, **options).numpy()
    except InferenceCancelled as error:
        raise Cancelled(f"{ANALYSIS_ID} was cancelled") from error
    ctx.progress(0.9, "measuring")

    results: list[DerivedVolume | HeatMap | Measurements] = [
        DerivedVolume(
            name="restored",
            description=f"{ANALYSIS_ID} {__version__}, {what}: {label}",
            volume=_derived(volume, restored, f"Restored ({what}; {label})", model),
            series_description=f"RESTORED {what}",  # the writers add DEMO for demo weights
        )
    ]
    difference = (restored - given).astype(np.float32)
    extent = float(np.abs(difference).max()) or 1.0
    diff_volume = volume.with_array(difference)
    diff_volume.metadata.update({"description": f"Restored minus input ({label})"})
    results.append(
        HeatMap(
            name="difference",
            description=f"What the restoration changed (restored minus its input); {label}",
            volume=diff_volume,
            value_range=(-extent, extent),
            units=ucum,
            colormap="coolwarm",
        )
    )
    rows: list[list[Any]] = [
        ["mean_abs_change", round(float(np.abs(difference).mean()), 4), units],
        ["sd_change", round(float(difference.std()), 4), units],
    ]
    if simulate:
        results.insert(
            1,
            DerivedVolume(
                name="degraded",
                description=f"The input after {degradation} (what was restored)",
                volume=_derived(volume, given, f"Degraded: {degradation}", model),
                series_description="SIMULATED DEGRADED input",
            ),
        )
        before, after = quality(source, given), quality(source, restored)
        for key, unit in (("psnr", "dB"), ("ssim", "")):
            if key in before:
                rows.append([f"{key}_degraded", round(before[key], 4), unit])
                rows.append([f"{key}_restored", round(after[key], 4), unit])
        rows.append(["psnr_gain", round(after["psnr"] - before["psnr"], 4), "dB"])
        ctx.logger.info("PSNR %.2f -> %.2f dB against the original", before["psnr"], after["psnr"])
    results.append(
        Measurements(
            name="quality",
            description=(
                f"{what}: "
                + (
                    f"against the original series after {degradation}"
                    if simulate
                    else "no reference (run with simulate to measure PSNR and SSIM)"
                )
                + f"; {label}"
            ),
            columns=["metric", "value", "unit"],
            rows=rows,
        )
    )
    ctx.progress(1.0, "done")
    return results
