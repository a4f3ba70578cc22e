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
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workstation.models import (
    autocast_context,
    cached_model,
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
    grid: Geometry


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
        return ClassifierModel(network, config, path, demo=False)
    config = (
        read_checkpoint_config(path, default_model_config())
        if path.is_file()
        else default_model_config()
    )
    network = build_network(config["network"])
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
    out = []
    with torch.inference_mode(), autocast_context(device, precision):
        for start in range(0, len(slices), batch_size):
            if cancelled is not None and cancelled():
                raise Cancelled(f"{ANALYSIS_ID} was cancelled")
            batch = torch.from_numpy(slices[start : start + batch_size, None]).to(device)
            try:
                logits = model.network(batch)
            except RuntimeError as error:
                raise ValueError(
                    f"{model.weights}: the network cannot classify axial slices shaped "
                    f"{tuple(batch.shape)} (batch, channel, rows, columns): {error}"
                ) from None
            out.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
    probabilities = np.concatenate(out)
    if probabilities.shape[1] != len(model.classes):
        raise ValueError(
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
    """Classify `volume` (HU) and explain the finding on its own grid (see the module doc)."""
    if explanation not in EXPLANATIONS:
        raise ValueError(f"explanation must be one of {', '.join(EXPLANATIONS)}")
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
    return SeriesClassification(series, per_slice, heat, target, grid)


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
    ctx.check_cancelled()
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
            "units": "evidence",
        }
        heat_map = HeatMap(
            name="explanation",
            description=f"{method} map for '{target}': {meaning}; {source}",
            volume=heat_volume,
            value_range=(0.0, 1.0),
            units="evidence (0-1)",
            colormap="inferno",
        )
    slices_with_finding = int((found.slice_probabilities[:, 0] < 0.5).sum())
    ctx.progress(1.0, "done")
    return Classification(
        name="classification",
        description=(
            f"{ANALYSIS_ID} {__version__}: {classes[int(np.argmax(found.probabilities))]} "
            f"({slices_with_finding} of {len(found.slice_probabilities)} axial slices "
            f"suggest a finding); {source}"
        ),
        labels=classes,
        probabilities=[float(p) for p in found.probabilities],
        explanation=heat_map,
    )
