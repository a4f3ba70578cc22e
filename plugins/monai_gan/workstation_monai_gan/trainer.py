"""The train entry: ``workstation train gan.generate --series UID ... --out MODEL_DIR``.

Non-saturating GAN loss (binary cross-entropy on logits), Adam at 2e-4. Each epoch draws its
shuffling, latents and dropout from ``seed`` and the epoch number, so a run resumed from a
checkpoint ends with exactly the weights an uninterrupted run would have. After every epoch the
model folder gets model.pt (generator + config, what `gan.generate --weights` reads),
checkpoint.pt (both networks and optimisers), metrics.json and samples.png, each atomically.
"""

from __future__ import annotations

import numpy as np
import torch

from workstation.plugins.api import (
    REFUSED_EPOCHS,
    REFUSED_NO_CHECKPOINT,
    TrainContext,
    TrainingRefused,
)
from workstation_monai_gan import __version__
from workstation_monai_gan.data import TrainingData, from_unit, prepare
from workstation_monai_gan.model import (
    LATENT_SIZE,
    build_discriminator,
    build_generator,
    save_model,
)

BATCH_SIZE = 32
LEARNING_RATE = 2e-4
SAMPLE_COUNT = 16
REAL_LABEL = 0.9  # one-sided label smoothing keeps the discriminator from winning outright
INSTANCE_NOISE = 0.05  # added to what the discriminator sees, so pixel noise cannot decide


def train(ctx: TrainContext) -> None:
    """Train (or resume) on ``ctx.volumes``; refuses bad input before any work."""
    data = prepare(ctx.volumes, ctx.epochs, ctx.device)
    device = ctx.torch_device
    generator, discriminator = build_generator().to(device), build_discriminator().to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=LEARNING_RATE, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=LEARNING_RATE, betas=(0.5, 0.999))
    start = 0
    if ctx.resume:
        start = _resume(ctx, data, generator, discriminator, opt_g, opt_d)
    ctx.logger.info(
        "training on %d %s slices (%s), epochs %d to %d, on %s",
        len(data.images),
        data.modality,
        "x".join(str(s) for s in data.images.shape[1:]),
        start + 1,
        ctx.epochs,
        ctx.device,
    )
    images = torch.from_numpy(data.images)[:, None]
    loss = torch.nn.BCEWithLogitsLoss()
    fixed = torch.randn(
        SAMPLE_COUNT, LATENT_SIZE, generator=torch.Generator().manual_seed(ctx.seed + 1)
    )
    batches = max(1, len(images) // BATCH_SIZE)
    for epoch in range(start + 1, ctx.epochs + 1):
        rng = torch.Generator().manual_seed(ctx.seed * 1_000_003 + epoch)
        torch.manual_seed(ctx.seed * 1_000_003 + epoch)  # dropout
        order = torch.randperm(len(images), generator=rng)
        generator.train()
        discriminator.train()
        sums = np.zeros(4)
        for b in range(batches):
            ctx.check_cancelled()
            real = images[order[b * BATCH_SIZE : (b + 1) * BATCH_SIZE]].to(device)
            latent = torch.randn(len(real), LATENT_SIZE, generator=rng).to(device)
            fake = generator(latent)
            real_logits = discriminator(real + INSTANCE_NOISE * torch.randn_like(real))
            fake_logits = discriminator(fake.detach() + INSTANCE_NOISE * torch.randn_like(fake))
            loss_d = loss(real_logits, torch.full_like(real_logits, REAL_LABEL)) + loss(
                fake_logits, torch.zeros_like(fake_logits)
            )
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            fooled = discriminator(fake + INSTANCE_NOISE * torch.randn_like(fake))
            loss_g = loss(fooled, torch.ones_like(fooled))
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            sums += [
                loss_g.item(),
                loss_d.item(),
                torch.sigmoid(real_logits).mean().item(),
                torch.sigmoid(fake_logits).mean().item(),
            ]
            done = (epoch - 1 - start + (b + 1) / batches) / (ctx.epochs - start)
            ctx.progress(done, f"epoch {epoch}/{ctx.epochs}, batch {b + 1}/{batches}")
        means = sums / batches
        _end_of_epoch(ctx, data, epoch, generator, discriminator, opt_g, opt_d, fixed)
        ctx.log_epoch(
            epoch,
            {
                "generator_loss": means[0],
                "discriminator_loss": means[1],
                "d_real": means[2],
                "d_fake": means[3],
            },
        )
    ctx.progress(1.0, f"trained to epoch {ctx.epochs}")


def _resume(ctx, data: TrainingData, generator, discriminator, opt_g, opt_d) -> int:
    state = ctx.load_checkpoint()
    if state is None:
        raise TrainingRefused(
            f"{ctx.model_dir}: no checkpoint to resume from", REFUSED_NO_CHECKPOINT
        )
    config = state["config"]
    if config["modality"] != data.modality:
        raise TrainingRefused(
            f"{ctx.checkpoint_path}: the checkpoint was trained on {config['modality']}, "
            f"the chosen series are {data.modality}"
        )
    epoch = int(state["epoch"])
    if epoch >= ctx.epochs:
        raise TrainingRefused(
            f"{ctx.checkpoint_path} is already at epoch {epoch}; ask for more than {epoch} "
            "epochs in total to train further",
            REFUSED_EPOCHS,
        )
    generator.load_state_dict(state["generator"])
    discriminator.load_state_dict(state["discriminator"])
    opt_g.load_state_dict(state["opt_generator"])
    opt_d.load_state_dict(state["opt_discriminator"])
    ctx.logger.info("resuming from epoch %d", epoch)
    return epoch


def _end_of_epoch(ctx, data, epoch, generator, discriminator, opt_g, opt_d, fixed) -> None:
    config = {**data.config(), "epochs": epoch, "seed": ctx.seed, "version": __version__}
    generator.eval()
    with torch.no_grad():
        samples = generator(fixed.to(ctx.torch_device))[:, 0].cpu().numpy()
    save_model(ctx.model_dir / "model.pt", generator, config)
    ctx.save_checkpoint(
        {
            "config": config,
            "generator": generator.state_dict(),
            "discriminator": discriminator.state_dict(),
            "opt_generator": opt_g.state_dict(),
            "opt_discriminator": opt_d.state_dict(),
        },
        epoch,
    )
    ctx.save_samples(from_unit(samples, data.value_range), data.value_range)
