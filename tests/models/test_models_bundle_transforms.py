"""A bundle's own transforms on a series: its preprocessing on a MetaTensor with the series'
affine, its inferer's window settings, and the way back onto the series' exact grid; MONAI's
chatter while a bundle is built goes to the log, the host's version warning stays."""

from __future__ import annotations

import logging
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import ndimage

from workstation.core.volume import Volume
from workstation.models import BundleBuildError, load_bundle, trust
from workstation.models.bundle_transforms import (
    WindowSettings,
    postprocess_to_source,
    preprocess_series,
    window_settings,
)

DEFAULTS = WindowSettings((8, 8, 8), 2, 0.25, source="the analysis's parameters")


def oblique_volume() -> Volume:
    values = np.full((9, 16, 14), -500.0, np.float32)
    values[2:7, 4:12, 3:11] = 300.0
    c, s = np.cos(0.4), np.sin(0.4)
    direction = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]) @ np.array(
        [[1, 0, 0], [0, c, -s], [0, s, c]]
    )
    return Volume(values, (1.3, 1.1, 2.4), (4.0, -7.0, 12.0), direction)


def transforms_bundle(**entries):
    from monai.transforms import (
        Compose,
        EnsureChannelFirstd,
        LoadImaged,
        Orientationd,
        ScaleIntensityRanged,
        Spacingd,
    )

    preprocessing = Compose(
        [
            LoadImaged(keys="image"),
            EnsureChannelFirstd(keys="image"),
            Orientationd(keys="image", axcodes="RAS", labels=(("L", "R"), ("P", "A"), ("I", "S"))),
            Spacingd(keys="image", pixdim=(0.9, 0.9, 1.0), mode="bilinear"),
            ScaleIntensityRanged(keys="image", a_min=-1000, a_max=1000, b_min=0, b_max=1),
        ]
    )
    values = {"preprocessing": preprocessing, "postprocessing": None, "inferer": None}
    values.update(entries)
    return SimpleNamespace(
        path="/bundles/test", metadata=SimpleNamespace(name="test"), imports=None, **values
    )


def test_preprocessing_runs_on_the_series_and_inverts_onto_its_exact_grid():
    volume = oblique_volume()
    bundle = transforms_bundle()
    pre = preprocess_series(bundle, volume)
    assert "LoadImaged" in pre.skipped[0]
    assert "Spacingd(pixdim=0.9x0.9x1)" in pre.describe()
    spacing = np.linalg.norm(np.asarray(pre.image.affine)[:3, :3], axis=0)
    np.testing.assert_allclose(spacing, (0.9, 0.9, 1.0), atol=1e-6)
    # the network input itself, brought back: the windowed series on its own voxels
    back = postprocess_to_source(bundle, pre, pre.image.as_tensor(), volume, nearest=False)
    assert back.array.shape == (1, *volume.array.shape)
    assert back.way_back == "MONAI Invertd (linear interpolation)"
    windowed = (volume.array + 1000.0) / 2000.0
    interior = ndimage.minimum_filter(volume.array, 3) == ndimage.maximum_filter(volume.array, 3)
    np.testing.assert_allclose(back.array[0][interior], windowed[interior], atol=1e-4)


def test_labels_from_the_bundle_come_back_by_nearest_neighbour():
    volume = oblique_volume()
    bundle = transforms_bundle()
    pre = preprocess_series(bundle, volume)
    labels = (pre.image.as_tensor() > 0.5).float()  # one channel of whole numbers
    back = postprocess_to_source(bundle, pre, labels, volume)
    assert back.way_back == "MONAI Invertd (nearest neighbour)"
    assert set(np.unique(back.array)) <= {0.0, 1.0}
    expected = (volume.array > 0).astype(np.float32)
    interior = ndimage.minimum_filter(expected, 3) == ndimage.maximum_filter(expected, 3)
    np.testing.assert_array_equal(back.array[0][interior], expected[interior])


def test_window_settings_come_from_the_bundle_inferer():
    from monai.inferers import SimpleInferer, SlidingWindowInferer

    sliding = transforms_bundle(
        inferer=SlidingWindowInferer(roi_size=(96, 96, 64), sw_batch_size=4, overlap=0.5)
    )
    settings = window_settings(sliding, (200, 200, 100), DEFAULTS)
    assert (settings.roi_size, settings.sw_batch_size, settings.overlap) == ((96, 96, 64), 4, 0.5)
    assert settings.mode == "constant"  # MONAI's default blending for that inferer
    assert "SlidingWindowInferer" in settings.describe()
    whole = window_settings(transforms_bundle(inferer=SimpleInferer()), (40, 30, 20), DEFAULTS)
    assert whole.roi_size == (40, 30, 20) and whole.sw_batch_size == 1
    assert window_settings(transforms_bundle(), (40, 30, 20), DEFAULTS) == DEFAULTS


def noisy_bundle(make_bundle):
    """Loads with MONAI's reader warnings, a deprecation notice and a renamed metadata key."""
    return make_bundle(
        metadata={"monai_version": "1.2.0", "optional_packages_version": {"nibabel": "5"}},
        config={
            "network_def": {
                "_target_": "UNet",
                "spatial_dims": 3,
                "in_channels": 1,
                "out_channels": 2,
                "channels": [4, 8],
                "strides": [2],
                "num_res_units": 0,
            },
            "preprocessing": {
                "_target_": "Compose",
                "transforms": [
                    {"_target_": "LoadImaged", "keys": "image"},
                    {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
                ],
            },
        },
    )


def test_library_chatter_goes_to_the_log_and_the_version_warning_stays(make_bundle, store, caplog):
    bundle = noisy_bundle(make_bundle)
    trust(bundle, store)
    caplog.set_level(logging.DEBUG, logger="workstation.models")
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        loaded = load_bundle(bundle, "cpu", store_dir=store)
    assert loaded.preprocessing is not None
    assert [str(w.message) for w in escaped] == []
    shown = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.name for r in shown] == ["workstation.models"]  # nothing from MONAI itself
    assert "tested with MONAI 1.2.0" in shown[0].getMessage()
    logged = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)
    assert "Orientationd" in logged and "optional_packages_version" in logged


def test_a_failing_entry_message_has_no_double_period(make_bundle, store):
    bundle = make_bundle(
        network_def={"_target_": "monai.networks.nets.NoSuchNet", "spatial_dims": 3}
    )
    trust(bundle, store)
    with pytest.raises(BundleBuildError) as caught:
        load_bundle(bundle, "cpu", store_dir=store)
    message = str(caught.value)
    assert "NoSuchNet" in message and ".." not in message


def test_a_failing_preprocessing_step_names_the_bundle_and_the_step():
    from monai.transforms import Compose, Resized

    bundle = transforms_bundle(preprocessing=Compose([Resized(keys="label", spatial_size=4)]))
    with pytest.raises(Exception, match=r"'test' \(/bundles/test\).*Resized.*9 x 16 x 14"):
        preprocess_series(bundle, oblique_volume())


def test_torch_tensor_predictions_are_accepted():
    volume = oblique_volume()
    bundle = transforms_bundle()
    pre = preprocess_series(bundle, volume)
    channels = torch.zeros((2, *pre.spatial_shape))
    channels[1] = 1.0
    back = postprocess_to_source(bundle, pre, channels, volume)
    assert back.array.shape == (2, *volume.array.shape)
    np.testing.assert_allclose(back.array[1], 1.0, atol=1e-5)


def test_a_quiet_scope_left_open_in_one_thread_never_blocks_another(caplog):
    """An in-process bundle run abandoned after a cancel stays inside its scope; the next run,
    on another thread, must still get in and out."""
    import logging
    import threading

    from workstation.models.quiet import library_messages_to_log

    inside, release, done = threading.Event(), threading.Event(), threading.Event()

    def abandoned() -> None:
        with library_messages_to_log():
            inside.set()
            release.wait(30)

    def next_run() -> None:
        with library_messages_to_log():
            warnings.warn("a library's notice", FutureWarning, stacklevel=1)
        done.set()

    caplog.set_level(logging.DEBUG, logger="workstation.models")
    stuck = threading.Thread(target=abandoned)
    stuck.start()
    try:
        assert inside.wait(10)
        threading.Thread(target=next_run).start()
        assert done.wait(10), "the second scope waited for the first"
        assert "a library's notice" in caplog.text
    finally:
        release.set()
        stuck.join(10)
    assert not warnings.showwarning.__module__.endswith("quiet")  # restored once all closed
