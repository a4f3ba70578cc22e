"""Train the demo weights: ``python -m workstation_monai_reconstruction.train --out DIR --seed 0``.

Reproducible and CPU-only (one thread). Both networks learn from clean synthetic phantom slices
(`samples`) degraded on the fly (`degrade`): CT with Gaussian low-dose noise of 10-80 HU, MR by
4x or 6x equispaced or random k-space undersampling. Held-out slices (seed + 1) are then
restored end to end by the analysis' own functions and the PSNR/SSIM reached are written, with
the data and settings, to MODEL_CARD.md beside the weights.
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

from workstation_monai_reconstruction import __version__
from workstation_monai_reconstruction.config import (
    CONFIG_KEY,
    CT_OFFSET_HU,
    CT_SCALE_HU,
    default_model_config,
)
from workstation_monai_reconstruction.degrade import undersample
from workstation_monai_reconstruction.network import build_networks
from workstation_monai_reconstruction.restore import (
    ReconstructionModel,
    _slice_scale,
    denoise_ct,
    quality,
    reconstruct_mr,
    simulate_low_dose,
)
from workstation_monai_reconstruction.samples import ct_slices, mr_slices

EVAL_NOISE_HU = 40.0
EVAL_ACCELERATION = 4
EVAL_CENTER_FRACTION = 0.08


def _flip(batch: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    dims = [d for d in (1, 2) if rng.random() < 0.5]
    return batch.flip(dims) if dims else batch


CT_CROP = 64


def ct_batch(clean: torch.Tensor, rng: np.random.Generator, batch: int):
    """(noisy, clean) random CT_CROP crops in network units; noise level drawn per slice."""
    picks = rng.integers(0, len(clean), batch)
    y, x = rng.integers(0, clean.shape[-1] - CT_CROP + 1, (2, batch))
    crops = [clean[p, a : a + CT_CROP, b : b + CT_CROP] for p, a, b in zip(picks, y, x)]
    target = _flip(torch.stack(crops), rng)
    sigma = torch.from_numpy(rng.uniform(10.0, 80.0, (batch, 1, 1)).astype(np.float32))
    noise = torch.from_numpy(rng.standard_normal(target.shape).astype(np.float32)) * sigma
    to_net = lambda hu: (hu + CT_OFFSET_HU) / CT_SCALE_HU  # noqa: E731
    return to_net(target + noise)[:, None], to_net(target)[:, None]


def mr_batch(clean: torch.Tensor, rng: np.random.Generator, batch: int):
    """(zero-filled, clean), both divided by the zero-filled slice's scale."""
    picks = torch.from_numpy(rng.integers(0, len(clean), batch))
    target = _flip(clean[picks], rng)
    measured = undersample(
        target,
        acceleration=float(rng.choice([4, 6])),
        center_fraction=float(rng.choice([0.06, 0.08, 0.1])),
        mask=str(rng.choice(["equispaced", "random"])),
        seed=int(rng.integers(2**31)),
    )
    scale = _slice_scale(measured.zero_filled)
    return (measured.zero_filled / scale)[:, None], (target / scale)[:, None]


def fit(network, make_batch, steps: int, lr: float, log_name: str) -> tuple[float, float]:
    """Train `network` for `steps` with AdamW + one-cycle and L1 loss; (final loss, seconds)."""
    optimiser = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps)
    network.train()
    losses: list[float] = []
    started = time.perf_counter()
    for step in range(steps):
        x, y = make_batch()
        optimiser.zero_grad()
        loss = torch.nn.functional.l1_loss(network(x), y)
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        if (step + 1) % 100 == 0:
            print(
                f"{log_name} step {step + 1}/{steps} loss {np.mean(losses[-100:]):.5f} "
                f"at {time.perf_counter() - started:.0f} s",
                flush=True,
            )
    network.eval()
    return float(np.mean(losses[-50:])), time.perf_counter() - started


def evaluate(model: ReconstructionModel, seed: int, volumes: int = 4) -> dict[str, Any]:
    """Held-out figures: PSNR/SSIM of the degraded input and of the restoration."""
    ct = ct_slices(seed, volumes)
    noisy = simulate_low_dose(ct, EVAL_NOISE_HU, seed)
    ct_before, ct_after = quality(ct, noisy), quality(ct, denoise_ct(noisy, model))
    mr = mr_slices(seed, volumes)
    zero_filled, restored = reconstruct_mr(
        mr, model, acceleration=EVAL_ACCELERATION, center_fraction=EVAL_CENTER_FRACTION, seed=seed
    )
    mr_before, mr_after = quality(mr, zero_filled), quality(mr, restored)
    return {
        "slices": len(ct),
        "ct_denoise": {"degraded": ct_before, "restored": ct_after},
        "mr_kspace": {"degraded": mr_before, "restored": mr_after},
    }


def train(
    out_dir: Path, seed: int, volumes: int, steps: int, batch: int, lr: float = 3e-3
) -> dict[str, Any]:
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    ct = torch.from_numpy(ct_slices(seed, volumes))
    mr = torch.from_numpy(mr_slices(seed + 1000, volumes))
    data_s = time.perf_counter() - started
    print(f"{len(ct)} CT and {len(mr)} MR training slices ready in {data_s:.0f} s", flush=True)

    config = default_model_config()
    networks = build_networks(config)
    ct_loss, ct_s = fit(networks["ct_denoise"], lambda: ct_batch(ct, rng, batch), steps, lr, "CT")
    mr_loss, mr_s = fit(networks["mr_kspace"], lambda: mr_batch(mr, rng, batch), steps, lr, "MR")

    model = ReconstructionModel(networks, config, out_dir / "model.pt", True)
    with torch.no_grad():
        figures = evaluate(model, seed + 1)
    total_s = time.perf_counter() - started
    config["demo"] = True
    config["trained"] = {
        "seed": seed,
        "volumes": volumes,
        "steps": steps,
        "batch": batch,
        "lr": lr,
        "final_loss": {"ct_denoise": ct_loss, "mr_kspace": mr_loss},
        "plugin_version": __version__,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().clone() for k, v in networks.state_dict().items()}
    torch.save({"state_dict": state, CONFIG_KEY: config}, out_dir / "model.pt")
    figures.update(
        {
            "data_s": data_s,
            "ct_train_s": ct_s,
            "mr_train_s": mr_s,
            "total_s": total_s,
            "parameters": sum(p.numel() for p in networks.parameters()),
            "size_mb": (out_dir / "model.pt").stat().st_size / 1e6,
            "training_slices": len(ct),
        }
    )
    (out_dir / "MODEL_CARD.md").write_text(model_card(config, figures), encoding="utf-8")
    return figures


def _row(name: str, figures: dict[str, Any]) -> str:
    before, after = figures[name]["degraded"], figures[name]["restored"]
    return (
        f"| {name} | {before['psnr']:.2f} | {after['psnr']:.2f} | "
        f"**{after['psnr'] - before['psnr']:+.2f}** | {before['ssim']:.3f} | {after['ssim']:.3f} |"
    )


def model_card(config: dict[str, Any], figures: dict[str, Any]) -> str:
    t = config["trained"]
    return f"""# Model card: workstation-monai-reconstruction demo weights

**Demo weights, trained on synthetic phantoms only. Not for clinical use.** Every result made
with them says so in its description (and `demo_weights` is true in the volume's metadata).

## Task
- `ct_denoise`: low-dose CT denoising, slice by slice.
- `mr_kspace`: accelerated MR reconstruction: the zero-filled image of undersampled k-space is
  refined, then the measured k-space columns are put back (data consistency) and the real
  part, clipped at 0, is the reconstruction.

## Networks
Per mode, a MONAI `{config["networks"]["ct_denoise"]["name"]}`:
`{json.dumps(config["networks"]["ct_denoise"])}`,
wrapped as a residual restorer
(output = input + UNet(input): it predicts the noise or the aliasing to remove). Both in one
checkpoint ({figures["parameters"]:,} parameters, {figures["size_mb"]:.2f} MB), keys
`ct_denoise.*` and `mr_kspace.*`. CT enters as (HU + 1000) / 1000; MR slices are divided by
their zero-filled image's 99th percentile.

## Data
`workstation_monai_reconstruction.samples`: {t["volumes"]} synthetic CT phantoms (seed
{t["seed"]}) and {t["volumes"]} MR phantoms (seed {t["seed"] + 1000}) of the workstation's
trunk phantom (`workstation.testing.phantoms.ct_phantom`: body, lungs, spine, liver, kidneys,
lesions), 6 slices each ({figures["training_slices"]} slices per mode): random matrix of
48-112 pixels centred in 112 x 112 slices, per-patient tissue contrast changes, random blur
of 0-0.8 pixel, no noise. CT is trained on random 64 x 64 crops, MR on whole slices
(aliasing spans the slice).
Degradations, drawn anew at every step (`degrade`):
- CT: Gaussian noise in image space, SD 10-80 HU per slice. Real low-dose noise is Poisson
  in the projections and correlated after reconstruction; this is the simpler stand-in.
- MR: centred 2D FFT of the slice, MONAI `EquispacedKspaceMaskd` or `RandomKspaceMaskd`,
  acceleration 4 or 6, centre fraction 0.06-0.10, zero-filled magnitude image.

## Training
`python -m workstation_monai_reconstruction.train --out DIR --seed {t["seed"]} --volumes
{t["volumes"]} --steps {t["steps"]} --batch {t["batch"]}`: L1 loss, AdamW with a one-cycle
schedule (max {t["lr"]:g}), {t["steps"]} steps of {t["batch"]} slices per mode, random flips,
CPU, one thread. Final loss: CT {t["final_loss"]["ct_denoise"]:.5f}, MR
{t["final_loss"]["mr_kspace"]:.5f} (network units).
Wall-clock time on {platform.processor() or platform.machine()} (one thread, on a machine
shared with other jobs): data
{figures["data_s"]:.0f} s, CT training {figures["ct_train_s"]:.0f} s, MR training
{figures["mr_train_s"]:.0f} s, total with evaluation {figures["total_s"]:.0f} s.

## Figures reached
Held-out phantoms (seed {t["seed"] + 1}, {figures["slices"]} slices per mode), restored end to
end by the analysis' own functions. CT: {EVAL_NOISE_HU:g} HU noise added. MR: {EVAL_ACCELERATION}x
equispaced mask, centre fraction {EVAL_CENTER_FRACTION}. PSNR over all slices with the reference's
value range, SSIM averaged over slices (`monai.metrics.PSNRMetric`, `SSIMMetric`):

| mode | PSNR degraded (dB) | PSNR restored (dB) | gain (dB) | SSIM degraded | SSIM restored |
|---|---|---|---|---|---|
{_row("ct_denoise", figures)}
{_row("mr_kspace", figures)}

## Evaluating on your own data
Run the analysis with `simulate` on a clean series: it degrades the series first (CT:
`noise_hu`; MR: `acceleration`, `center_fraction`, `mask`), restores the degraded copy, and
reports PSNR and SSIM of both against the original, with the degraded copy returned beside the
restored one:
`workstation run monai_reconstruction.restore --series UID --out DIR --param simulate=true`.

## Limits
Synthetic anatomy with piecewise-constant tissues, white image-space CT noise and single-coil
magnitude MR: real scans have texture, streaks, multi-coil complex k-space and motion. Without
`simulate` an MR series is refined as a zero-filled image with no data consistency (DICOM
magnitude images carry no k-space). Use weights trained on real data for anything beyond a
demonstration.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_out = Path(__file__).parent / "data"
    parser.add_argument(
        "--out", type=Path, default=default_out, help="folder for model.pt and MODEL_CARD.md"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--volumes", type=int, default=20, help="phantoms per mode")
    parser.add_argument("--steps", type=int, default=700, help="training steps per mode")
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args(argv)
    figures = train(args.out, args.seed, args.volumes, args.steps, args.batch)
    for mode in ("ct_denoise", "mr_kspace"):
        before, after = figures[mode]["degraded"], figures[mode]["restored"]
        print(
            f"{mode}: PSNR {before['psnr']:.2f} -> {after['psnr']:.2f} dB, "
            f"SSIM {before['ssim']:.3f} -> {after['ssim']:.3f}"
        )
    print(f"done in {figures['total_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
