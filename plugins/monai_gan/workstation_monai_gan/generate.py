"""The analysis entry ``gan.generate``: count synthetic slices from a trained generator, as one
new series marked SYNTHETIC (the host writes it with new UIDs and a synthetic patient).

The same seed gives the same images on any run: latents are drawn on the CPU from `seed` alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from workstation.plugins.api import GeneratedSeries, RunContext, Volume
from workstation_monai_gan import __version__
from workstation_monai_gan.data import from_unit
from workstation_monai_gan.model import LATENT_SIZE, load_model
from workstation_monai_gan.plugin import DEMO_WEIGHTS

CPU_COUNT_LIMIT = 2000
BATCH = 64


def sample(
    generator: torch.nn.Module, config: dict[str, Any], count: int, seed: int, device: Any = "cpu"
) -> np.ndarray:
    """`count` images [count, 64, 64] in modality values (integers for CT)."""
    latent = torch.randn(count, LATENT_SIZE, generator=torch.Generator().manual_seed(seed))
    chunks = []
    with torch.no_grad():
        for start in range(0, count, BATCH):
            out = generator(latent[start : start + BATCH].to(device))
            chunks.append(out[:, 0].float().cpu().numpy())
    values = from_unit(np.concatenate(chunks), tuple(config["value_range"]))
    if config["modality"] == "CT":
        return np.rint(values).astype(np.int16)
    return values.astype(np.float32)


def run(ctx: RunContext) -> GeneratedSeries:
    count, seed = ctx.params["count"], ctx.params["seed"]
    if not ctx.device.startswith(("cuda", "mps")) and count > CPU_COUNT_LIMIT:
        raise ValueError(
            f"count={count} images is too many for the CPU (no GPU here); ask for at most "
            f"{CPU_COUNT_LIMIT}, or run on a GPU"
        )
    if ctx.weights is None:
        raise ValueError("gan.generate needs a model: give --weights MODEL_DIR/model.pt")
    generator, config = load_model(ctx.weights, ctx.device)
    given = ctx.inputs.volume
    if given is not None:
        modality = str(given.metadata.get("modality") or "OT")
        if modality != config["modality"]:
            raise ValueError(
                f"the model at {ctx.weights} makes {config['modality']} images, but the chosen "
                f"series is {modality}; choose a {config['modality']} series or another model"
            )
    ctx.progress(0.1, f"generating {count} images")
    images = sample(generator, config, count, seed, ctx.torch_device)
    ctx.check_cancelled()
    demo = Path(ctx.weights).resolve() == Path(DEMO_WEIGHTS).resolve()
    model = "demo weights (CT phantoms)" if demo else f"model {Path(ctx.weights).name}"
    spacing_x, spacing_y = config["pixel_spacing"]
    volume = Volume(
        images,
        spacing=(spacing_x, spacing_y, config["slice_thickness"]),
        metadata={
            "modality": config["modality"],
            "description": f"SYNTHETIC GAN images, seed {seed}",
            **({"window_center": 40, "window_width": 400} if config["modality"] == "CT" else {}),
        },
    )
    ctx.logger.info("generated %d images with %s", count, model)
    ctx.progress(1.0, "done")
    return GeneratedSeries(
        name="gan_synthetic",
        description=(
            f"{count} independent synthetic {config['modality']} slices from a MONAI GAN "
            f"(workstation-monai-gan {__version__}, {model}, trained {config['epochs']} epochs), "
            f"seed {seed}; stacked as a series, they are not neighbouring slices of one body"
        ),
        volume=volume,
        # the host adds "DEMO" when the shipped weights made it: said once, by the host
        series_description=f"SYNTHETIC GAN {config['modality']} seed {seed}",
        modality=config["modality"],
    )
