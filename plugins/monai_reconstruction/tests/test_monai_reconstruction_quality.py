"""The demo weights on held-out synthetic data (seeds never used in training): what a user can
expect them to do, measured as the model card measures it."""

from __future__ import annotations

import pytest
import torch
from workstation_monai_reconstruction.degrade import simulate_low_dose, to_kspace, undersample
from workstation_monai_reconstruction.restore import (
    denoise_ct,
    load_reconstruction_model,
    quality,
    reconstruct_mr,
    refine_mr,
)
from workstation_monai_reconstruction.samples import ct_slices, mr_slices

from workstation.models import CheckpointError

HELD_OUT_SEED = 9001


@pytest.fixture(scope="module")
def demo_model():
    torch.set_num_threads(1)
    return load_reconstruction_model()


def test_demo_weights_are_marked_as_demo(demo_model):
    assert demo_model.demo


def test_ct_denoising_gains_3_db_on_held_out_phantoms(demo_model):
    clean = ct_slices(HELD_OUT_SEED, volumes=2)
    noisy = simulate_low_dose(clean, 40.0, HELD_OUT_SEED)
    before, after = quality(clean, noisy), quality(clean, denoise_ct(noisy, demo_model))
    assert after["psnr"] - before["psnr"] >= 3.0
    assert after["ssim"] > before["ssim"]


@pytest.mark.parametrize("mask", ["equispaced", "random"])
def test_mr_kspace_reconstruction_gains_3_db_on_held_out_phantoms(demo_model, mask):
    clean = mr_slices(HELD_OUT_SEED, volumes=2)
    zero_filled, restored = reconstruct_mr(
        clean, demo_model, acceleration=4, center_fraction=0.08, mask=mask, seed=HELD_OUT_SEED
    )
    before, after = quality(clean, zero_filled), quality(clean, restored)
    assert after["psnr"] - before["psnr"] >= 3.0
    assert after["ssim"] > before["ssim"]


def test_putting_the_measured_kspace_back_improves_on_the_network_alone(demo_model):
    clean = mr_slices(HELD_OUT_SEED + 1, volumes=1)
    measured = undersample(torch.from_numpy(clean), 4, 0.08, "equispaced", seed=3)
    network_only = refine_mr(measured.zero_filled, demo_model).numpy()
    consistent = refine_mr(measured.zero_filled, demo_model, measured).numpy()
    assert quality(clean, consistent)["psnr"] > quality(clean, network_only)["psnr"]
    sampled = measured.mask.expand_as(measured.kspace) > 0
    again = to_kspace(torch.from_numpy(consistent))
    before = to_kspace(torch.from_numpy(network_only))
    kspace_error = lambda k: float((k - measured.kspace)[sampled].abs().mean())  # noqa: E731
    assert kspace_error(again) < 0.7 * kspace_error(before)


def test_higher_acceleration_degrades_more():
    clean = mr_slices(HELD_OUT_SEED, volumes=1)
    psnr = [
        quality(clean, undersample(torch.from_numpy(clean), a, 0.08, seed=0).zero_filled.numpy())
        for a in (2, 8)
    ]
    assert psnr[0]["psnr"] > psnr[1]["psnr"] + 3.0


def test_weights_for_another_network_are_refused_naming_the_file(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {"layer.weight": torch.zeros(2, 2)}}, path)
    with pytest.raises(CheckpointError, match=r"other\.pt"):
        load_reconstruction_model(path)
