"""Generation with the shipped demo weights: reproducible, marked synthetic, realistic against
held-out phantom slices, and not copies of the training slices."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from workstation_monai_gan import quality
from workstation_monai_gan.generate import sample
from workstation_monai_gan.model import load_model
from workstation_monai_gan.phantoms import HELD_OUT_SEEDS, phantom_volume, training_volumes
from workstation_monai_gan.plugin import DEMO_WEIGHTS

from workstation.plugins.api import Volume


@pytest.fixture(scope="module")
def demo_model():
    return load_model(DEMO_WEIGHTS)


@pytest.fixture(scope="module")
def training_slices():
    return quality.slices_of(training_volumes())


@pytest.fixture(scope="module")
def held_out_slices():
    return quality.slices_of([phantom_volume(seed) for seed in HELD_OUT_SEEDS[:3]])


def test_the_same_seed_gives_the_same_images(run_analysis):
    first = run_analysis("gan.generate", params={"count": 6, "seed": 3}).one("generated_series")
    again = run_analysis("gan.generate", params={"count": 6, "seed": 3}).one("generated_series")
    other = run_analysis("gan.generate", params={"count": 6, "seed": 4}).one("generated_series")
    np.testing.assert_array_equal(first.volume.array, again.volume.array)
    assert np.abs(first.volume.array.astype(float) - other.volume.array).mean() > 10.0
    assert first.volume.array.shape == (6, 64, 64)


def test_images_have_the_modality_spacing_and_range_of_the_training_data(run_analysis):
    series = run_analysis("gan.generate", params={"count": 8}).one("generated_series")
    _, config = load_model(DEMO_WEIGHTS)
    volume = series.volume
    assert series.synthetic and series.modality == "CT" == volume.metadata["modality"]
    assert series.series_description == "SYNTHETIC GAN CT seed 0"  # the host adds DEMO
    assert volume.spacing == pytest.approx((5.4, 5.4, 5.0))  # 128 px at 2.7 mm -> 64 px
    assert volume.array.dtype == np.int16
    low, high = config["value_range"]
    assert low - 0.5 <= volume.array.min() and volume.array.max() <= high + 0.5  # rounded
    # Air outside the body and soft tissue inside, as in the phantoms.
    assert np.median(volume.array[:, :4, :]) < -900
    assert -100 < np.median(volume.array[:, 28:36, 28:36]) < 200


def test_written_as_a_synthetic_dicom_series_and_indexed(workstation_store, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "workstation.cli", "--store", str(workstation_store)]
    command += ["run", "gan.generate", "--param", "count=3", "--param", "seed=5"]
    done = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    files = sorted(out.rglob("*.dcm"))
    assert len(files) == 3
    ds = pydicom.dcmread(files[0])
    assert ds.SeriesDescription == "DEMO SYNTHETIC GAN CT seed 5"  # DEMO once: demo weights
    assert list(ds.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert ds.Modality == "CT"
    assert ds.PatientID.startswith("SYNTHETIC") and "DEMO" not in ds.PatientID
    assert "gan" in str(ds.get("DerivationDescription", "")).lower()
    from workstation.dicom.catalog import Catalog

    with Catalog(workstation_store) as catalog:
        assert catalog.open_series(ds.SeriesInstanceUID).array.shape == (3, 64, 64)


def test_realism_beats_noise_and_the_blurred_mean_image(
    demo_model, training_slices, held_out_slices
):
    generator, config = demo_model
    value_range = tuple(config["value_range"])
    generated = sample(generator, config, 160, seed=11)
    rng = np.random.default_rng(0)
    reference = quality.features(held_out_slices, value_range)
    score = {
        name: quality.mmd2(quality.features(images, value_range), reference, reference)
        for name, images in {
            "generated": generated,
            **quality.baselines(training_slices, 160, rng),
        }.items()
    }
    print("MMD² vs held-out phantom slices:", score)
    assert score["generated"] < 0.3 * score["noise"]
    assert score["generated"] < 0.65 * score["blurred_mean"]


def test_generated_images_are_not_copies_of_training_images(demo_model, training_slices):
    generator, config = demo_model
    generated = sample(generator, config, 160, seed=12).astype(np.float64)
    rng = np.random.default_rng(1)
    level = quality.noise_level(training_slices)
    picked = training_slices[rng.choice(len(training_slices), 64, replace=False)]
    duplicates = picked + rng.normal(0.0, level, size=picked.shape)
    generated_nn = quality.nearest_rms(generated, training_slices)
    duplicate_nn = quality.nearest_rms(duplicates, training_slices)
    print(
        f"nearest training image, RMS HU: generated min {generated_nn.min():.1f}, "
        f"median {np.median(generated_nn):.1f}; near-duplicates max {duplicate_nn.max():.1f}"
    )
    assert generated_nn.min() > 2.0 * duplicate_nn.max()


def test_a_huge_request_on_the_cpu_is_refused_before_work(run_analysis):
    results = run_analysis("gan.generate", params={"count": 50_000}, check=False)
    assert results.outcome.outcome == "failed"
    assert "count=50000 images is too many for the CPU" in results.outcome.error


def test_a_series_of_another_modality_is_refused(run_analysis):
    mr = Volume(np.zeros((4, 64, 64), np.float32), metadata={"modality": "MR"})
    results = run_analysis("gan.generate", mr, params={"count": 2}, check=False)
    assert results.outcome.outcome == "failed"
    assert "makes CT images, but the chosen series is MR" in results.outcome.error


def test_a_model_file_that_is_not_a_gan_is_named_in_the_error(tmp_path):
    from workstation_monai_gan.model import ModelFileError

    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelFileError) as error:
        load_model(bad)
    assert str(bad) in str(error.value) and "not a readable model file" in str(error.value)


def test_demo_weights_are_small_and_documented():
    weights = Path(DEMO_WEIGHTS)
    assert weights.is_file() and weights.stat().st_size < 20 * 2**20
    card = (Path(__file__).parents[1] / "workstation_monai_gan" / "MODEL_CARD.md").read_text()
    assert "demo_training" in card and "MMD" in card and "nearest" in card


def test_listing_does_not_import_torch():
    code = (
        "import sys, workstation_monai_gan.plugin as p; specs = p.workstation_analyses(); "
        "print(specs[0].train_entry, 'torch' in sys.modules, 'monai' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["workstation_monai_gan.trainer:train", "False", "False"]
