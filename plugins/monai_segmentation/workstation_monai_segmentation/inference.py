"""Running the segmentation: weights -> network, series -> label map on the series' own grid.

`run(ctx)` is the analysis entry the workstation calls. `load_segmentation_model` and `segment`
are usable on their own (the training command and the tests use them).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workstation.models import (
    BundleError,
    InferenceCancelled,
    ModelError,
    cached_model,
    field_of_view_note,
    is_demo_weights,
    load_model,
    prepare_network,
    read_checkpoint_config,
    sliding_window,
)
from workstation.plugins.api import Cancelled, Label, LabelMap, Measurements, RunContext, Volume
from workstation_monai_segmentation import __version__
from workstation_monai_segmentation.config import (
    ANALYSIS_ID,
    DEMO_DESCRIPTION,
    DEMO_WEIGHTS,
    default_model_config,
)
from workstation_monai_segmentation.labels_back import labels_to_source_grid
from workstation_monai_segmentation.network import build_network
from workstation_monai_segmentation.preprocessing import network_input, preprocess, to_source_grid

BUNDLE_COLORS = ((220, 60, 60), (60, 180, 75), (0, 130, 200), (255, 225, 25), (145, 30, 180))
"""RGB colours for a bundle's labels, which carry none."""

SMALL_FIELD_OF_VIEW_MM = 64.0
"""A series whose largest extent is below this is far smaller than what the weights shipped or
trained by this plugin saw (phantoms of about 128 mm and more): the results say so."""


def demo_weights_path() -> Path:
    """The demo checkpoint shipped inside this package."""
    return Path(str(files("workstation_monai_segmentation").joinpath(DEMO_WEIGHTS)))


@dataclass
class SegmentationModel:
    """A network ready for inference, with what it needs to be used correctly."""

    network: torch.nn.Module
    config: dict[str, Any]
    weights: Path
    demo: bool
    labels: list[Label] = field(default_factory=list)
    bundle: Any = None  # the LoadedBundle when the weights are a MONAI bundle folder


@dataclass
class Segmentation:
    """What `segment_volume` finds: labels (uint8, [z, y, x]) on the series' grid, and notes
    saying how they were made (whose preprocessing, window settings, way back)."""

    labels: np.ndarray
    notes: list[str] = field(default_factory=list)
    channels: int = 0


def labels_from_config(config: dict[str, Any]) -> list[Label]:
    return [
        Label(
            int(item["value"]),
            str(item["name"]),
            tuple(int(c) for c in item.get("color") or (255, 0, 0)),
            tuple(item["code"]) if item.get("code") else None,
        )
        for item in config["labels"]
    ]


def load_segmentation_model(
    weights: str | Path | None = None,
    device: Any = "cpu",
    precision: str = "auto",
    *,
    store_dir: str | Path | None = None,
) -> SegmentationModel:
    """Weights the user chose (a checkpoint for this network, or a trusted MONAI bundle folder),
    or the shipped demo weights when `weights` is None."""
    path = Path(weights) if weights is not None else demo_weights_path()
    if path.is_dir():
        bundle = load_model(path, device, store_dir=store_dir)
        config = default_model_config()
        names = {int(k): str(v) for k, v in bundle.labels.items() if int(k) != 0}
        labels = [
            Label(value, name, BUNDLE_COLORS[(value - 1) % len(BUNDLE_COLORS)])
            for value, name in sorted(names.items())
        ]  # none in metadata.json: named after the network's channels once it has run
        network = prepare_network(bundle.network, device, precision)
        return SegmentationModel(network, config, path, False, labels, bundle)
    config = (
        read_checkpoint_config(path, default_model_config())
        if path.is_file()
        else default_model_config()
    )
    network = build_network(config["network"])
    loaded = load_model(path, device, network=network, store_dir=store_dir).network
    demo = is_demo_weights(path, config, demo_weights_path())
    return SegmentationModel(
        prepare_network(loaded, device, precision), config, path, demo, labels_from_config(config)
    )


def kept_segmentation_model(
    weights: str | Path | None,
    device: Any = "cpu",
    precision: str = "auto",
    *,
    store_dir: str | Path | None = None,
    logger: Any = None,
) -> AbstractContextManager[SegmentationModel]:
    """`load_segmentation_model` through the host's model cache: the next run on unchanged
    weights, device and precision gets the same network without reading the file again."""
    path = Path(weights) if weights is not None else demo_weights_path()
    return cached_model(
        path,
        device,
        precision,
        lambda: load_segmentation_model(path, device, precision, store_dir=store_dir),
        namespace=ANALYSIS_ID,
        store_dir=store_dir,
        logger=logger,
    )


def segment(
    volume: Volume,
    model: SegmentationModel,
    *,
    roi_size: int = 64,
    overlap: float = 0.25,
    sw_batch_size: int = 2,
    blend_mode: str = "gaussian",
    device: Any = "cpu",
    precision: str = "auto",
    progress: Callable[[float, str], Any] | None = None,
    cancelled: Callable[[], bool] | None = None,
    resample_probabilities: bool = False,
) -> np.ndarray:
    """Label values (uint8, [z, y, x]) on `volume`'s grid.

    By default labels are read back by nearest neighbour, interpolating the probabilities only
    where labels change (fast on 512 x 512 x N series); `resample_probabilities=True` resamples
    every class-probability map onto the source grid with MONAI's `Invertd` first (the reference
    path, several times slower on large series)."""
    report = progress or (lambda fraction, message: None)
    report(0.05, "resampling to the model's grid")
    if resample_probabilities:  # Invertd needs MONAI's record of the forward transforms
        data, transform = preprocess(volume, model.config)
        image = data["image"].as_tensor()[None]  # (1, 1, i, j, k)
    else:
        image, network_grid = network_input(volume, model.config)
    logits = sliding_window(
        model.network,
        image,
        [int(roi_size)] * 3,
        sw_batch_size=int(sw_batch_size),
        overlap=float(overlap),
        mode=blend_mode,
        device=device,
        precision=precision,
        progress=lambda fraction: report(0.1 + 0.75 * fraction, "segmenting"),
        cancelled=cancelled,
    )
    report(0.9, "resampling onto the series' grid")
    check_finite(logits, model, precision)
    if resample_probabilities:
        probabilities = torch.softmax(logits[0].float(), dim=0).cpu()
        del logits
        on_source = to_source_grid(probabilities, data, transform)
        return on_source.argmax(axis=0).astype(np.uint8)
    scores = logits[0].float().cpu().numpy()  # the softmax is taken only where labels mix
    del logits
    on_network = scores.transpose(0, 3, 2, 1)  # (C, z, y, x) view
    return labels_to_source_grid(on_network, network_grid, volume.geometry, logits=True)


def check_finite(logits: torch.Tensor, model: SegmentationModel, precision: str) -> None:
    """Refuse NaN or infinite network scores: their arg-max would be background, silently."""
    if not bool(torch.isfinite(logits).all()):
        raise ModelError(
            f"the network gave NaN or infinite scores on this series (weights "
            f"{model.weights.name}, precision {precision}): try precision fp32, or other weights"
        )


def segment_volume(
    volume: Volume,
    model: SegmentationModel,
    *,
    roi_size: int = 64,
    overlap: float = 0.25,
    sw_batch_size: int = 2,
    blend_mode: str = "gaussian",
    device: Any = "cpu",
    precision: str = "auto",
    progress: Callable[[float, str], Any] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Segmentation:
    """Labels on `volume`'s grid and how they were made. A MONAI bundle runs with its own
    preprocessing, inferer settings and postprocessing (`segment_with_bundle`); the plugin's
    network with the plugin's (`segment`)."""
    options = {"device": device, "precision": precision, "progress": progress}
    window = {"roi_size": roi_size, "overlap": overlap, "sw_batch_size": sw_batch_size}
    if model.bundle is not None and model.bundle.preprocessing is not None:
        return segment_with_bundle(
            volume, model, **window, blend_mode=blend_mode, cancelled=cancelled, **options
        )
    labels = segment(volume, model, **window, blend_mode=blend_mode, cancelled=cancelled, **options)
    low, high = model.config["window"]
    spacing = "x".join(f"{float(s):g}" for s in model.config["spacing"])
    own = (
        f"preprocessing: the analysis's own (orientation {model.config.get('axcodes', 'RAS')}, "
        f"{spacing} mm voxels, {float(low):g}..{float(high):g} HU window)"
    )
    notes = [own if model.bundle is None else f"{own}, as the bundle defines no preprocessing"]
    notes.append(
        f"sliding window: the analysis's parameters: window {int(roi_size)}^3, overlap "
        f"{float(overlap):g}, {int(sw_batch_size)} per batch, {blend_mode} blending"
    )
    return Segmentation(labels, notes, int(model.config["network"]["out_channels"]))


def segment_with_bundle(
    volume: Volume,
    model: SegmentationModel,
    *,
    roi_size: int = 64,
    overlap: float = 0.25,
    sw_batch_size: int = 2,
    blend_mode: str = "gaussian",
    device: Any = "cpu",
    precision: str = "auto",
    progress: Callable[[float, str], Any] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Segmentation:
    """A MONAI bundle as its authors run it: the bundle's `preprocessing` on the series (a
    MetaTensor with its affine), the window settings of its `inferer` through the host's
    `sliding_window` (progress, cancel, out-of-memory fallback), its `postprocessing` (without
    writers), and back onto the series' exact grid (its `Invertd`, else MONAI's `Invertd` over
    the applied preprocessing). The analysis's window parameters apply only when the bundle's
    inferer is not a sliding window."""
    from workstation.models.bundle_transforms import (
        WindowSettings,
        postprocess_to_source,
        preprocess_series,
        window_settings,
    )

    report = progress or (lambda fraction, message: None)
    bundle = model.bundle
    report(0.05, "applying the bundle's preprocessing")
    pre = preprocess_series(bundle, volume)
    defaults = WindowSettings(
        (int(roi_size),) * 3,
        int(sw_batch_size),
        float(overlap),
        blend_mode,
        source="the analysis's parameters",
    )
    settings = window_settings(bundle, pre.spatial_shape, defaults)
    logits = sliding_window(
        model.network,
        pre.network_input(),
        list(settings.roi_size),
        sw_batch_size=settings.sw_batch_size,
        overlap=settings.overlap,
        mode=settings.mode,
        sigma_scale=settings.sigma_scale,
        padding_mode=settings.padding_mode,
        cval=settings.cval,
        device=device,
        precision=precision,
        progress=lambda fraction: report(0.1 + 0.75 * fraction, "segmenting"),
        cancelled=cancelled,
    )
    check_finite(logits, model, precision)
    channels = int(logits.shape[1])
    report(0.9, "the bundle's postprocessing, back onto the series' grid")
    if bundle.postprocessing is not None:
        back = postprocess_to_source(bundle, pre, logits[0], volume)
    else:  # as the zoo's segmentation bundles do: softmax, invert linearly, then argmax
        probabilities = torch.softmax(logits[0].float(), dim=0).cpu()
        back = postprocess_to_source(
            bundle, pre, probabilities, volume, run_postprocessing=False, nearest=False
        )
    del logits
    values = back.array
    if values.shape[0] == 1:  # the postprocessing made labels (argmax or threshold)
        labels = np.rint(values[0])
    else:
        labels = values.argmax(axis=0)
    if labels.min() < 0 or labels.max() > 255:
        raise BundleError(
            f"bundle {bundle.path}: its postprocessing gave values {labels.min():g} to "
            f"{labels.max():g}, not label values 0-255"
        )
    notes = [
        f"preprocessing: the bundle's own: {pre.describe()}",
        f"sliding window: {settings.describe()}",
        back.describe(),
    ]
    return Segmentation(labels.astype(np.uint8), notes, channels)


def small_series_note(volume: Volume, model: SegmentationModel) -> str | None:
    """A note when the series covers far less than what this plugin's weights were trained on
    (not said of a bundle: what it was trained on is its authors' to state)."""
    if model.bundle is not None:
        return None
    return field_of_view_note(
        volume, SMALL_FIELD_OF_VIEW_MM, "fields of view of about 128 mm and more"
    )


def label_counts(labels: np.ndarray, values: list[int]) -> dict[int, int]:
    """Voxels of each label value: a comparison per value for a few labels (no 8-byte copy of
    the map, as `np.bincount` makes), one bincount for many."""
    if len(values) <= 8:
        return {value: int(np.count_nonzero(labels == value)) for value in values}
    counts = np.bincount(labels.ravel(), minlength=max(values) + 1)
    return {value: int(counts[value]) for value in values}


def run(ctx: RunContext) -> list[LabelMap | Measurements]:
    """The analysis entry: label map on the input's grid and a table of volumes in mL."""
    params = ctx.params
    ctx.progress(0.0, "loading the model")
    kept = kept_segmentation_model(ctx.weights, ctx.device, params["precision"], logger=ctx.logger)
    with kept as model:
        ctx.check_cancelled()
        try:
            found = segment_volume(
                ctx.volume,
                model,
                roi_size=params["roi_size"],
                overlap=params["overlap"],
                sw_batch_size=params["sw_batch_size"],
                blend_mode=params["blend_mode"],
                device=ctx.device,
                precision=params["precision"],
                progress=ctx.progress,
                cancelled=ctx.cancelled,
            )
        except InferenceCancelled as error:
            raise Cancelled(f"{ANALYSIS_ID} was cancelled") from error
        small = small_series_note(ctx.volume, model)
        notes = found.notes + ([small] if small else [])
        # the kept model's list stays unshared; a bundle without label names: one per channel
        label_table = list(model.labels) or [
            Label(value, f"class {value}", BUNDLE_COLORS[(value - 1) % len(BUNDLE_COLORS)])
            for value in range(1, max(found.channels, 2))
        ]
    labels = found.labels
    for note in notes:
        (ctx.logger.warning if note is small else ctx.logger.info)("%s", note)
    description = DEMO_DESCRIPTION if model.demo else f"weights: {model.weights.name}"
    how = "; ".join(notes)
    label_volume = ctx.volume.with_array(labels)
    label_volume.metadata = {
        "description": f"Segmentation ({description})",
        "analysis": ANALYSIS_ID,
        "analysis_version": __version__,
        "demo_weights": model.demo,
        "notes": list(notes),
    }
    label_map = LabelMap(
        name="segmentation",
        description=f"{ANALYSIS_ID} {__version__}: {description}. {how}",
        volume=label_volume,
        labels=label_table,
    )
    # LabelMap.volumes_ml's rule (voxels times voxel volume), counted without sorting the map
    counts = label_counts(labels, [lab.value for lab in label_table])
    voxel_ml = float(np.prod(label_volume.spacing)) / 1000.0
    volumes_ml = {lab.value: counts[lab.value] * voxel_ml for lab in label_table}
    table = Measurements(
        name="volumes",
        description=f"Volume per label, {description}. {how}",
        columns=["label", "name", "volume_ml", "voxels"],
        units={"volume_ml": "mL", "voxels": "voxels"},
        rows=[
            [lab.value, lab.name, round(volumes_ml[lab.value], 3), counts[lab.value]]
            for lab in label_table
        ],
    )
    ctx.progress(1.0, "done")
    return [label_map, table]
