"""Running the classification: weights -> network, series -> probabilities and an explanation
map on the series' own grid.

`run(ctx)` is the analysis entry the workstation calls. `load_classifier` and `classify` are
usable on their own (the training command, the evaluation and the tests use them).

How a series is read: it is resampled to axial slices on the network grid
(`preprocessing.to_network`), every slice is classified, and the series is reported as its most
suspicious slice (the slice with the lowest probability of class 0, "no finding"); with two
classes that makes the series' lesion probability the highest slice probability.
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
    CheckpointError,
    autocast_context,
    cached_model,
    field_of_view_note,
    is_demo_weights,
    load_model,
    prepare_network,
    read_checkpoint_config,
)
from workstation.plugins.api import (
    Cancelled,
    Classification,
    Geometry,
    HeatMap,
    RunContext,
    Volume,
)
from workstation_monai_classification import __version__
from workstation_monai_classification.config import (
    ANALYSIS_ID,
    DEMO_DESCRIPTION,
    DEMO_WEIGHTS,
    default_model_config,
)
from workstation_monai_classification.explain import gradcam_map, occlusion_map
from workstation_monai_classification.network import build_network
from workstation_monai_classification.preprocessing import to_network, to_source

"""Checkpoint entry holding the model's configuration (plain values, readable weights-only)."""

EXPLANATIONS = ("gradcam", "occlusion", "none")
SMALL_FIELD_OF_VIEW_MM = 64.0
"""A series whose largest extent is below this is far smaller than the phantoms this plugin's
weights were trained on (bodies of about 200 mm and more): the results say so."""


def demo_weights_path() -> Path:
    """The demo checkpoint shipped inside this package."""
    return Path(str(files("workstation_monai_classification").joinpath(DEMO_WEIGHTS)))


@dataclass
class ClassifierModel:
    """A network ready for inference, with what it needs to be used correctly."""

    network: torch.nn.Module
    config: dict[str, Any]
    weights: Path
    demo: bool
    bundle: Any = None  # the LoadedBundle when the weights are a MONAI bundle folder

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.config["classes"]]


@dataclass
class SeriesClassification:
    """What `classify` finds: series probabilities (one per class), each slice's, and the
    explanation on the series' grid (None when not asked for)."""

    probabilities: np.ndarray
    slice_probabilities: np.ndarray
    explanation: np.ndarray | None
    target_class: int
    grid: Geometry | None
    notes: list[str] = field(default_factory=list)


def load_classifier(
    weights: str | Path | None = None,
    device: Any = "cpu",
    precision: str = "auto",
    *,
    store_dir: str | Path | None = None,
) -> ClassifierModel:
    """Weights the user chose (a checkpoint for this network, or a trusted MONAI bundle folder
    holding a 2-D slice classifier), or the shipped demo weights when `weights` is None."""
    path = Path(weights) if weights is not None else demo_weights_path()
    if path.is_dir():
        bundle = load_model(path, device, store_dir=store_dir)
        config = default_model_config()
        names = {int(k): str(v) for k, v in bundle.labels.items()}
        if names:
            config["classes"] = [names.get(i, f"class {i}") for i in range(max(names) + 1)]
        network = prepare_network(bundle.network, device, precision)
        return ClassifierModel(network, config, path, demo=False, bundle=bundle)
    config = (
        read_checkpoint_config(path, default_model_config())
        if path.is_file()
        else default_model_config()
    )
    try:
        network = build_network(config["network"])
    except (ValueError, KeyError, TypeError) as error:
        raise CheckpointError(
            f"{path}: these weights describe a network this analysis cannot build ({error}); "
            f"give a checkpoint of its slice classifier or a MONAI bundle folder"
        ) from None
    loaded = load_model(path, device, network=network, store_dir=store_dir).network
    demo = is_demo_weights(path, config, demo_weights_path())
    return ClassifierModel(prepare_network(loaded, device, precision), config, path, demo)


def kept_classifier(
    weights: str | Path | None,
    device: Any = "cpu",
    precision: str = "auto",
    *,
    store_dir: str | Path | None = None,
    logger: Any = None,
) -> AbstractContextManager[ClassifierModel]:
    """`load_classifier` through the host's model cache: the next run on unchanged weights,
    device and precision gets the same network without reading the file again."""
    path = Path(weights) if weights is not None else demo_weights_path()
    return cached_model(
        path,
        device,
        precision,
        lambda: load_classifier(path, device, precision, store_dir=store_dir),
        namespace=ANALYSIS_ID,
        store_dir=store_dir,
        logger=logger,
    )


def slice_probabilities(
    model: ClassifierModel,
    slices: np.ndarray,
    *,
    device: Any = "cpu",
    precision: str = "auto",
    batch_size: int = 16,
    cancelled: Callable[[], bool] | None = None,
) -> np.ndarray:
    """Softmax class probabilities of every slice of ``slices[k, j, i]``: shape (k, classes)."""
    batches = torch.from_numpy(np.ascontiguousarray(slices[:, None]))
    return class_scores(
        model, batches, "softmax", device, precision, batch_size, cancelled, what="axial slices"
    )


def class_scores(
    model: ClassifierModel,
    batches: torch.Tensor,
    activation: str,
    device: Any,
    precision: str,
    batch_size: int,
    cancelled: Callable[[], bool] | None,
    *,
    what: str = "its preprocessed input",
) -> np.ndarray:
    """Class probabilities ("softmax" or "sigmoid") of each item of `batches`, a batch at a
    time. A network that cannot take the input, or gives another number of outputs than there
    are class names, is a problem with the weights the user chose: a `CheckpointError` (a
    `BundleError` for a bundle) naming them. Out-of-memory errors pass through untouched, for
    the host's fallback."""
    problem = BundleError if model.bundle is not None else CheckpointError
    out = []
    with torch.inference_mode(), autocast_context(device, precision):
        for start in range(0, len(batches), batch_size):
            if cancelled is not None and cancelled():
                raise Cancelled(f"{ANALYSIS_ID} was cancelled")
            batch = batches[start : start + batch_size].to(device)
            try:
                logits = model.network(batch).float()
            except torch.OutOfMemoryError:
                raise
            except RuntimeError as error:
                raise problem(
                    f"{model.weights}: the network cannot take {what} shaped "
                    f"{tuple(batch.shape)}: {str(error).splitlines()[0]}"
                ) from None
            scores = torch.sigmoid(logits) if activation == "sigmoid" else logits.softmax(1)
            out.append(scores.cpu().numpy())
    probabilities = np.concatenate(out)
    if probabilities.shape[1] != len(model.classes):
        raise problem(
            f"{model.weights}: the network gives {probabilities.shape[1]} outputs but "
            f"{len(model.classes)} class names are known ({', '.join(model.classes)})"
        )
    return probabilities


def classify(
    volume: Volume,
    model: ClassifierModel,
    *,
    explanation: str = "gradcam",
    occlusion_patch_mm: float = 12.0,
    batch_size: int = 16,
    device: Any = "cpu",
    precision: str = "auto",
    progress: Callable[[float, str], Any] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> SeriesClassification:
    """Classify `volume` (HU) and explain the finding on its own grid (see the module doc).
    A MONAI bundle with its own preprocessing is run as its authors run it
    (`classify_with_bundle`)."""
    if explanation not in EXPLANATIONS:
        raise ValueError(f"explanation must be one of {', '.join(EXPLANATIONS)}")
    if model.bundle is not None and model.bundle.preprocessing is not None:
        return classify_with_bundle(
            volume,
            model,
            explanation=explanation,
            occlusion_patch_mm=occlusion_patch_mm,
            batch_size=batch_size,
            device=device,
            precision=precision,
            progress=progress,
            cancelled=cancelled,
        )
    report = progress or (lambda fraction, message: None)
    report(0.05, "resampling to axial slices")
    slices, grid = to_network(volume, model.config)
    report(0.15, f"classifying {len(slices)} slices")
    per_slice = slice_probabilities(
        model,
        slices,
        device=device,
        precision=precision,
        batch_size=batch_size,
        cancelled=cancelled,
    )
    suspicious = int(np.argmin(per_slice[:, 0]))
    series = per_slice[suspicious]
    target = 1 + int(np.argmax(series[1:])) if len(series) > 1 else 0
    heat = None
    if explanation != "none":
        report(0.4, f"explaining with {explanation}")
        if explanation == "gradcam":
            layer = str(model.config.get("gradcam_layer") or "class_layers.relu")
            on_grid = gradcam_map(
                model.network, slices, per_slice, target, layer, device=device,
                batch_size=batch_size, cancelled=cancelled,
            )  # fmt: skip
        else:
            patch = max(2, round(occlusion_patch_mm / float(model.config["spacing"][0])))
            on_grid = occlusion_map(
                model.network, slices, per_slice, target, patch, device=device,
                batch_size=max(batch_size, 32), cancelled=cancelled,
                progress=lambda f: report(0.4 + 0.45 * f, "occlusion sensitivity"),
            )  # fmt: skip
        report(0.9, "resampling the map onto the series' grid")
        heat = to_source(on_grid, grid, volume)
    low, high = model.config["window"]
    spacing = "x".join(f"{float(v):g}" for v in model.config["spacing"])
    own = (
        f"preprocessing: the analysis's own (axial slices of {spacing} mm, "
        f"{float(low):g}..{float(high):g} HU window)"
    )
    notes = [own if model.bundle is None else f"{own}, as the bundle defines no preprocessing"]
    return SeriesClassification(series, per_slice, heat, target, grid, notes)


def network_dimensions(network: torch.nn.Module) -> tuple[int, int]:
    """(spatial dimensions, input channels) of the network's first convolution; (2, 1) when it
    has none."""
    for module in network.modules():
        if isinstance(module, torch.nn.modules.conv._ConvNd):
            return module.weight.dim() - 2, int(module.in_channels)
    return 2, 1


def explanation_layer(network: torch.nn.Module, preferred: str) -> str:
    """`preferred` when the network has it, else its last convolution (Grad-CAM's usual
    choice for a network it does not know)."""
    names = dict(network.named_modules())
    if preferred in names:
        return preferred
    convolutions = [
        name for name, m in names.items() if isinstance(m, torch.nn.modules.conv._ConvNd)
    ]
    if not convolutions:
        raise ValueError("Grad-CAM needs a convolution layer; this network has none")
    return convolutions[-1]


def bundle_activation(bundle: Any) -> str:
    """ "sigmoid" when the bundle's postprocessing applies one to its predictions, else
    "softmax" (what a classifier's logits become probabilities by)."""
    from workstation.models.bundle_transforms import bundle_steps

    for step in bundle_steps(bundle.postprocessing):
        if type(step).__name__ in ("Activationsd", "Activations"):
            sigmoid = getattr(step, "sigmoid", False)
            if any(sigmoid) if isinstance(sigmoid, (list, tuple)) else sigmoid:
                return "sigmoid"
    return "softmax"


def classify_with_bundle(
    volume: Volume,
    model: ClassifierModel,
    *,
    explanation: str = "gradcam",
    occlusion_patch_mm: float = 12.0,
    batch_size: int = 16,
    device: Any = "cpu",
    precision: str = "auto",
    progress: Callable[[float, str], Any] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> SeriesClassification:
    """A MONAI bundle's classifier as its authors run it: the bundle's `preprocessing` on the
    series (a MetaTensor with its affine), then a 3-D network on the whole result, or a 2-D one
    on every slice along its last axis (the series reported as its most suspicious slice, as
    for the plugin's own network); the activation its postprocessing names (softmax unless it
    applies a sigmoid); the explanation map brought back onto the series' exact grid with
    MONAI's `Invertd` over the applied preprocessing."""
    from workstation.models.bundle_transforms import postprocess_to_source, preprocess_series

    report = progress or (lambda fraction, message: None)
    bundle = model.bundle
    report(0.05, "applying the bundle's preprocessing")
    pre = preprocess_series(bundle, volume)
    image = pre.image.as_tensor().float()  # (C, i, j, k)
    dims, channels = network_dimensions(model.network)
    if int(image.shape[0]) != channels:
        raise BundleError(
            f"bundle {bundle.path}: its preprocessing gives {int(image.shape[0])} channel(s), "
            f"its network takes {channels}"
        )
    activation = bundle_activation(bundle) if bundle.postprocessing is not None else "softmax"
    if dims == 3:
        batches = image[None]  # the whole volume at once
        unit = "the whole volume"
    elif dims == 2:
        batches = image.permute(3, 0, 1, 2).contiguous()  # (k, C, i, j): slices along k
        unit = f"{len(batches)} slices along its last axis"
    else:
        raise BundleError(f"bundle {bundle.path}: a {dims}-D network cannot classify a series")
    report(0.15, f"classifying {unit}")
    per_unit = class_scores(model, batches, activation, device, precision, batch_size, cancelled)
    suspicious = int(np.argmin(per_unit[:, 0])) if per_unit.shape[1] > 1 else 0
    series = per_unit[suspicious]
    target = 1 + int(np.argmax(series[1:])) if len(series) > 1 else 0
    notes = [
        f"preprocessing: the bundle's own: {pre.describe()}",
        f"network: {dims}-D on {unit}, {activation} of its outputs",
    ]
    heat = None
    if explanation != "none":
        if channels != 1:
            notes.append(f"no explanation map: the network takes {channels} channels")
        elif explanation == "occlusion" and dims == 3:
            notes.append(
                "no explanation map: occlusion sensitivity is computed for 2-D slice "
                "classifiers only; choose Grad-CAM for this 3-D network"
            )
        else:
            report(0.4, f"explaining with {explanation}")
            slices = (batches[:, 0] if dims == 2 else image[0]).numpy()  # (n, i, j) or (i, j, k)
            if explanation == "gradcam":
                layer = explanation_layer(
                    model.network, str(model.config.get("gradcam_layer") or "")
                )
                stack = slices if dims == 2 else slices[None]
                on_grid = gradcam_map(
                    model.network, stack, per_unit, target, layer, device=device,
                    batch_size=batch_size, cancelled=cancelled,
                )  # fmt: skip
                on_grid = on_grid if dims == 2 else on_grid[0]
                notes.append(f"explanation: Grad-CAM of layer {layer}")
            else:
                spacing = float(np.linalg.norm(np.asarray(pre.image.affine)[:3, 0]))
                patch = max(2, round(occlusion_patch_mm / spacing))
                on_grid = occlusion_map(
                    model.network, slices, per_unit, target, patch, device=device,
                    batch_size=max(batch_size, 32), cancelled=cancelled,
                    progress=lambda f: report(0.4 + 0.45 * f, "occlusion sensitivity"),
                )  # fmt: skip
            ijk = on_grid.transpose(1, 2, 0) if dims == 2 else on_grid  # (i, j, k)
            report(0.9, "bringing the map back onto the series' grid")
            back = postprocess_to_source(
                bundle,
                pre,
                torch.from_numpy(np.ascontiguousarray(ijk, np.float32))[None],
                volume,
                run_postprocessing=False,
                nearest=False,
            )
            heat = np.clip(back.array[0], 0.0, 1.0)
            notes.append(f"explanation map back onto the series' grid by {back.way_back}")
    return SeriesClassification(series, per_unit, heat, target, None, notes)


def small_series_note(volume: Volume, model: ClassifierModel) -> str | None:
    """A note when the series covers far less than this plugin's weights were trained on (not
    said of a bundle: what it was trained on is its authors' to state)."""
    if model.bundle is not None:
        return None
    return field_of_view_note(volume, SMALL_FIELD_OF_VIEW_MM, "bodies of about 200 mm and more")


def run(ctx: RunContext) -> Classification:
    """The analysis entry: class probabilities, explained by a heat map on the input's grid
    (`Classification.explanation`, which the viewer overlays and the writers save)."""
    params = ctx.params
    ctx.progress(0.0, "loading the model")
    with kept_classifier(ctx.weights, ctx.device, params["precision"], logger=ctx.logger) as model:
        ctx.check_cancelled()
        found = classify(
            ctx.volume,
            model,
            explanation=params["explanation"],
            occlusion_patch_mm=params["occlusion_patch_mm"],
            batch_size=params["batch_size"],
            device=ctx.device,
            precision=params["precision"],
            progress=ctx.progress,
            cancelled=ctx.cancelled,
        )
        small = small_series_note(ctx.volume, model)
    ctx.check_cancelled()
    notes = found.notes + ([small] if small else [])
    for note in notes:
        (ctx.logger.warning if note is small else ctx.logger.info)("%s", note)
    how = "; ".join(notes)
    source = DEMO_DESCRIPTION if model.demo else f"weights: {model.weights.name}"
    classes = model.classes
    heat_map = None
    if found.explanation is not None:
        gradcam = params["explanation"] == "gradcam"
        method = "Grad-CAM" if gradcam else "Occlusion sensitivity"
        meaning = (
            "slice probability times the slice's normalised Grad-CAM"
            if gradcam
            else "drop in probability when a patch is hidden"
        )
        target = classes[found.target_class]
        heat_volume = ctx.volume.with_array(found.explanation.astype(np.float32))
        heat_volume.metadata = {
            "description": f"{method} for '{target}' ({source})",
            "analysis": ANALYSIS_ID,
            "analysis_version": __version__,
            "demo_weights": model.demo,
            "units": "1",
            "notes": list(notes),
        }
        heat_map = HeatMap(
            name="explanation",
            description=f"{method} map for '{target}' (evidence, 0 to 1): {meaning}; {source}",
            volume=heat_volume,
            value_range=(0.0, 1.0),
            units="1",
            colormap="inferno",
        )
    slices_with_finding = int((found.slice_probabilities[:, 0] < 0.5).sum())
    units = "axial slices" if found.grid is not None else "slices or volumes"
    ctx.progress(1.0, "done")
    return Classification(
        name="classification",
        description=(
            f"{ANALYSIS_ID} {__version__}: {classes[int(np.argmax(found.probabilities))]} "
            f"({slices_with_finding} of {len(found.slice_probabilities)} {units} "
            f"suggest a finding); {source}. {how}"
        ),
        labels=classes,
        probabilities=[float(p) for p in found.probabilities],
        explanation=heat_map,
    )
