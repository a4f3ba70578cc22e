"""Train the demo weights: ``python -m workstation_monai_classification.train --out DIR --seed 0``.

Reproducible and CPU-only (one thread, so it shares a machine politely). Synthetic series
(`phantoms`, seed `seed`) are brought to the network grid by the same `to_network` the analysis
uses; each axial slice is labelled from the lesion mask resampled onto that grid (a lesion
section of at least 5 pixels: positive; no lesion at all: negative; a mere graze: left out).
A small 2-D DenseNet learns lesion / no lesion on balanced epochs (every positive slice and
three times as many random negative slices, randomly flipped), from 48 x 48 pixel patches
(`crops`). Then held-out series (seed + 1) are
classified end to end with `inference.classify`, and the series-level figures (ROC AUC,
accuracy, recall, specificity, precision, F1) are written, with the data and settings, to
MODEL_CARD.md beside the weights.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workstation.models import CONFIG_KEY
from workstation.plugins.api import Volume
from workstation_monai_classification import __version__
from workstation_monai_classification.config import default_model_config
from workstation_monai_classification.inference import ClassifierModel, classify
from workstation_monai_classification.metrics import series_figures
from workstation_monai_classification.network import build_network
from workstation_monai_classification.phantoms import (
    CONTRAST_HU,
    KIDNEY_ENHANCED_HU,
    KIDNEY_PLAIN_HU,
    NOISE_HU,
    RADIUS_MM,
    ClassificationCase,
    make_cases,
)
from workstation_monai_classification.preprocessing import to_network

CANVAS = 96  # slices are centre-padded/cropped to CANVAS^2 pixels (air outside) ...
CROP = 48  # ... and the network trains on CROP^2 patches of them (see `crops`)
POSITIVE_PIXELS = 5
GRAZE = 0.1
NEGATIVES_PER_POSITIVE = 3


def slice_dataset(
    cases: list[ClassificationCase], config: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every usable axial slice of `cases` on the network grid (N, CANVAS, CANVAS), its label
    (N,) and, for slices with a lesion, the (row, column) of a lesion pixel (N, 2; -1 without)."""
    images, labels, centres = [], [], []
    for case in cases:
        slices, grid = to_network(case.volume, config)
        mask = Volume(case.lesion_mask.astype(np.float32), case.volume.spacing,
                      case.volume.origin, case.volume.direction)  # fmt: skip
        on_grid = mask.resample_to(grid, order=1, fill_value=0.0).array
        for k in range(len(slices)):
            pixels = int((on_grid[k] >= 0.5).sum())
            if pixels >= POSITIVE_PIXELS:
                label = 1
            elif on_grid[k].max() < GRAZE:
                label = 0
            else:
                continue
            lesion = _fit(on_grid[k])
            if label == 1:
                rows, columns = np.nonzero(lesion >= 0.5)
                pick = len(rows) // 2
                centres.append((rows[pick], columns[pick]) if len(rows) else (-1, -1))
            else:
                centres.append((-1, -1))
            images.append(_fit(slices[k]))
            labels.append(label)
    return (
        np.stack(images).astype(np.float32),
        np.asarray(labels, np.int64),
        np.asarray(centres, np.int64),
    )


def _fit(image: np.ndarray) -> np.ndarray:
    """Centre-crop or zero-pad (zero is air after windowing) a slice to CANVAS^2."""
    out = np.zeros((CANVAS, CANVAS), np.float32)
    src, dst = [], []
    for size in image.shape:
        if size >= CANVAS:
            start = (size - CANVAS) // 2
            src.append(slice(start, start + CANVAS))
            dst.append(slice(0, CANVAS))
        else:
            start = (CANVAS - size) // 2
            src.append(slice(0, size))
            dst.append(slice(start, start + size))
    out[tuple(dst)] = image[tuple(src)]
    return out


def crops(
    images: np.ndarray,
    labels: np.ndarray,
    centres: np.ndarray,
    index: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """CROP^2 patches of the chosen slices: around the lesion (anywhere but the patch's outer
    8 pixels) for positive slices, around a random body pixel for negative ones.

    The network ends in global max pooling, so a patch is classified the way a whole slice is
    (the strongest local evidence wins), at a quarter of the cost of training on whole slices.
    """
    out = np.empty((len(index), CROP, CROP), np.float32)
    margin, limit = 8, CANVAS - CROP
    for n, i in enumerate(index):
        if labels[i] == 1 and centres[i, 0] >= 0:
            row, column = centres[i]
            top = int(np.clip(row - rng.integers(margin, CROP - margin), 0, limit))
            left = int(np.clip(column - rng.integers(margin, CROP - margin), 0, limit))
        else:
            rows, columns = np.nonzero(images[i] > 0.05)
            pick = rng.integers(len(rows)) if len(rows) else None
            row = rows[pick] if pick is not None else CANVAS // 2
            column = columns[pick] if pick is not None else CANVAS // 2
            top = int(np.clip(row - CROP // 2 + rng.integers(-8, 9), 0, limit))
            left = int(np.clip(column - CROP // 2 + rng.integers(-8, 9), 0, limit))
        out[n] = images[i, top : top + CROP, left : left + CROP]
    return out


def train_network(
    images: np.ndarray,
    labels: np.ndarray,
    centres: np.ndarray,
    config: dict[str, Any],
    *,
    epochs: int,
    seed: int,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
    log: Any = lambda message: print(message, flush=True),
) -> tuple[torch.nn.Module, list[float]]:
    """Train on balanced epochs; returns the network (eval mode) and the loss of each epoch."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    network = build_network(config["network"])
    optimiser = torch.optim.AdamW(network.parameters(), lr=learning_rate, weight_decay=1e-4)
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    negatives_per_epoch = min(len(negatives), NEGATIVES_PER_POSITIVE * len(positives))
    per_epoch = len(positives) + negatives_per_epoch
    steps = epochs * int(np.ceil(per_epoch / batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, learning_rate, total_steps=steps)
    target = torch.from_numpy(labels)
    losses = []
    for epoch in range(epochs):
        network.train()
        chosen = np.concatenate(
            [positives, rng.choice(negatives, negatives_per_epoch, replace=False)]
        )
        rng.shuffle(chosen)
        total = 0.0
        for start in range(0, len(chosen), batch_size):
            index = chosen[start : start + batch_size]
            batch = torch.from_numpy(crops(images, labels, centres, index, rng))[:, None]
            if rng.random() < 0.5:
                batch = batch.flip(-1)
            if rng.random() < 0.5:
                batch = batch.flip(-2)
            loss = torch.nn.functional.cross_entropy(
                network(batch), target[torch.from_numpy(index)]
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(index)
        losses.append(total / len(chosen))
        log(f"epoch {epoch + 1}/{epochs}: loss {losses[-1]:.4f}")
    return network.eval(), losses


def evaluate(model: ClassifierModel, cases: list[ClassificationCase]) -> dict[str, Any]:
    """Series-level figures of `model` on `cases`, classified end to end on their own grids."""
    scores = [
        float(classify(case.volume, model, explanation="none").probabilities[1]) for case in cases
    ]
    return series_figures(scores, [case.label for case in cases])


def stock_phantom_check(model: ClassifierModel, seeds: int = 3) -> dict[str, list[float]]:
    """Series lesion probability on the workstation's stock phantom (`ct_phantom`: the demo's
    and the test helpers' CT, fixed tissue values, unenhanced kidneys), without lesions and
    with three: data the network was not trained on."""
    from workstation.plugins.api import Volume
    from workstation.testing.phantoms import ct_phantom

    found: dict[str, list[float]] = {"without": [], "with": []}
    for seed in range(seeds):
        for key, lesions in (("without", 0), ("with", 3)):
            hu, _ = ct_phantom(seed=seed, lesions=lesions)
            volume = Volume(hu, (0.9, 0.9, 2.5), metadata={"modality": "CT"})
            found[key].append(float(classify(volume, model, explanation="none").probabilities[1]))
    return found


def write_model_card(path: Path, facts: dict[str, Any]) -> None:
    f = facts["validation"]
    stock = facts["stock_phantom"]
    stock_without = ", ".join(f"{p:.3f}" for p in stock["without"])
    stock_with = ", ".join(f"{p:.3f}" for p in stock["with"])
    keys = ("roc_auc", "accuracy", "recall", "specificity", "precision", "f1")
    row = " | ".join(f"{f[key]:.3f}" for key in keys)
    card = f"""# Model card: liver lesion classifier (demo weights)

**Demo weights, trained only on synthetic CT phantoms. Not for clinical use.** Results made with
them are labelled as demo results in the workstation and in every file it writes.

## Model
- Analysis `{facts["analysis"]}`, plugin `workstation-monai-classification` {facts["version"]}.
- MONAI `DenseNet` (2-D; `"pool": "max"` means global max pooling in its head, so a small
  lesion's evidence is not averaged over the whole slice): {json.dumps(facts["config"]["network"])};
  {facts["parameters"]} weights, file `model.pt` ({facts["weights_bytes"] / 1024:.0f} KiB).
- Input: one axial slice resampled to {facts["config"]["spacing"][0]:g} mm pixels (slices every
  {facts["config"]["spacing"][2]:g} mm), HU windowed {facts["config"]["window"]} to [0, 1].
- Output: softmax over {facts["config"]["classes"]}. A series is reported as its most suspicious
  slice (series lesion probability = highest slice probability).
- Explanations: Grad-CAM (layer `{facts["config"]["gradcam_layer"]}`) or occlusion
  sensitivity, resampled onto the series' own grid.

## Data (all synthetic, made by `workstation_monai_classification.phantoms`)
- Trunk phantoms (body, lungs, spine, liver, kidneys) with random field of view, pixel size
  1.8-2.6 mm, slice spacing 2.5-5 mm, in-plane rotation up to 15 degrees, tissue values
  (kidneys unenhanced, {KIDNEY_PLAIN_HU[0]:g}-{KIDNEY_PLAIN_HU[1]:g} HU, in half the series,
  enhanced, {KIDNEY_ENHANCED_HU[0]:g}-{KIDNEY_ENHANCED_HU[1]:g} HU, in the other half),
  liver texture, 2-6 enhancing liver vessels, Gaussian noise {NOISE_HU[0]:g}-{NOISE_HU[1]:g} HU.
- Half the series have one or two hypodense liver lesions: radius {RADIUS_MM[0]:g}-{RADIUS_MM[1]:g}
  mm, {CONTRAST_HU[0]:g}-{CONTRAST_HU[1]:g} HU below the liver.
- Training: {facts["train_cases"]} series (seed {facts["seed"]}), giving {facts["train_slices"]}
  labelled slices ({facts["train_positive_slices"]} with a lesion).
- Validation: {f["cases"]} different series (seed {facts["seed"] + 1}), {f["positives"]} with
  a lesion, classified end to end on their own grids.

## Figures reached (validation series, threshold {f["threshold"]:g})
| ROC AUC | accuracy | recall | specificity | precision | F1 |
|---|---|---|---|---|---|
| {row} |

Confusion: {f["true_positives"]} TP, {f["false_positives"]} FP, {f["true_negatives"]} TN,
{f["false_negatives"]} FN. The plugin's tests check ROC AUC >= 0.90 on another held-out set
(seed 2026).

## Training
`python -m workstation_monai_classification.train --out DIR --seed {facts["seed"]}`:
{facts["epochs"]} epochs, batch 32 patches of 48 x 48 pixels (around the lesion in positive
slices, anywhere in the body in negative ones), AdamW with a one-cycle learning rate (peak 3e-3),
random flips; CPU, one thread; {facts["train_seconds"]:.0f} s for training,
{facts["total_seconds"]:.0f} s in all ({facts["cpu_seconds"]:.0f} s of CPU time; the wall-clock
times grow when other jobs share the machine) on {facts["machine"]} (torch {facts["torch"]},
MONAI {facts["monai"]}).
Final training loss per epoch: {", ".join(f"{v:.3f}" for v in facts["losses"])}.

## The workstation's stock phantom (not in the training data)
`workstation.testing.phantoms.ct_phantom` (the demo's CT: 0.9 x 0.9 x 2.5 mm, fixed tissue values,
no liver texture or vessels, unenhanced kidneys at 30 HU), seeds 0-{len(stock["without"]) - 1},
series lesion probability: without lesions {stock_without}; with three lesions {stock_with}.
Earlier demo weights, trained with enhanced kidneys only, called the lesion-free phantom
0.28-0.72 (seed 2: "liver lesion"): its kidneys, darker than the liver, looked like lesions to
them. Half the training series now have unenhanced kidneys.

## Limits
Phantoms are not patients: the network has only seen one liver shape family, round lesions and
synthetic noise. It says nothing about real CT, and outside its training distribution its
probabilities are not calibrated.
"""
    path.write_text(card, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for model.pt and card")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-cases", type=int, default=240)
    parser.add_argument("--validation-cases", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args(argv)

    import monai

    torch.set_num_threads(1)
    began, began_cpu = time.perf_counter(), time.process_time()
    config = default_model_config()
    cases = make_cases(args.train_cases, args.seed)
    images, labels, centres = slice_dataset(cases, config)
    print(f"{len(cases)} series -> {len(labels)} slices, {int(labels.sum())} with a lesion")
    clock = time.perf_counter()
    network, losses = train_network(
        images, labels, centres, config, epochs=args.epochs, seed=args.seed
    )
    train_seconds = time.perf_counter() - clock

    args.out.mkdir(parents=True, exist_ok=True)
    weights = args.out / "model.pt"
    stored = dict(config, demo=True)
    torch.save({"state_dict": network.state_dict(), CONFIG_KEY: stored}, weights)
    model = ClassifierModel(network, stored, weights, demo=True)
    validation = evaluate(model, make_cases(args.validation_cases, args.seed + 1))
    print(json.dumps(validation, indent=1))
    stock = stock_phantom_check(model)
    print(f"stock phantom: {json.dumps(stock)}")
    facts = {
        "analysis": "monai_classification.liver_lesion",
        "version": __version__,
        "config": stored,
        "parameters": sum(p.numel() for p in network.parameters()),
        "weights_bytes": weights.stat().st_size,
        "seed": args.seed,
        "epochs": args.epochs,
        "train_cases": len(cases),
        "train_slices": len(labels),
        "train_positive_slices": int(labels.sum()),
        "validation": validation,
        "stock_phantom": stock,
        "losses": losses,
        "train_seconds": train_seconds,
        "total_seconds": time.perf_counter() - began,
        "cpu_seconds": time.process_time() - began_cpu,
        "machine": platform.machine(),
        "torch": torch.__version__,
        "monai": monai.__version__,
    }
    write_model_card(args.out / "MODEL_CARD.md", facts)
    (args.out / "training.json").write_text(json.dumps(facts, indent=1), encoding="utf-8")
    print(f"wrote {weights} and MODEL_CARD.md in {facts['total_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
