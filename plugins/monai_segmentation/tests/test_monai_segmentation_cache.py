"""The second run on the same weights: the network kept in memory, the same labels; and the
separable way onto the network grid against MONAI's transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from workstation_monai_segmentation import plugin
from workstation_monai_segmentation.config import ANALYSIS_ID, default_model_config
from workstation_monai_segmentation.inference import kept_segmentation_model, run
from workstation_monai_segmentation.labels_back import labels_to_source_grid
from workstation_monai_segmentation.phantoms import (
    ACQUISITIONS,
    centred_geometry,
    make_case,
    rotation_matrix,
)
from workstation_monai_segmentation.preprocessing import (
    metatensor_geometry,
    network_input,
    preprocess,
)

from workstation.models import ModelCache
from workstation.plugins.api import AnalysisInputs, RunContext, Volume
from workstation.plugins.manager import load_registry
from workstation.plugins.runner import Runner

LOADED, REUSED = "model loaded from model.pt", "model for model.pt reused from memory"


@pytest.fixture(scope="module")
def case():
    torch.set_num_threads(1)
    geometry = centred_geometry((2.0, 2.0, 3.0), ACQUISITIONS["axial"])
    return make_case(np.random.default_rng(7), geometry)


@pytest.fixture
def cache(monkeypatch):
    fresh = ModelCache()
    monkeypatch.setattr("workstation.models.cache._CACHE", fresh)
    return fresh


def run_logged(volume):
    logs: list[str] = []
    ctx = RunContext(
        analysis_id=ANALYSIS_ID,
        params=plugin.workstation_analyses()[0].coerce_parameters({}),
        inputs=AnalysisInputs(volume=volume),
        device="cpu",
        on_log=lambda level, message: logs.append(message),
    )
    return run(ctx), logs


def test_second_run_reuses_the_network_and_gives_the_same_results(case, cache, monkeypatch):
    (first_map, first_table), first_logs = run_logged(case.image)
    (second_map, second_table), second_logs = run_logged(case.image)
    assert any(LOADED in m for m in first_logs) and any(REUSED in m for m in second_logs)
    with kept_segmentation_model(None, "cpu", "auto") as a, kept_segmentation_model(None) as b:
        assert a.network is not b.network  # held by one run: the other gets its own copy
    monkeypatch.setattr("workstation.models.cache._CACHE", ModelCache(max_entries=0))
    (plain_map, plain_table), plain_logs = run_logged(case.image)
    assert not any(REUSED in m for m in plain_logs)
    assert np.array_equal(second_map.volume.array, plain_map.volume.array)
    assert np.array_equal(first_map.volume.array, plain_map.volume.array)
    assert set(np.unique(plain_map.volume.array)) == {0, 1, 2}
    assert second_table.rows == plain_table.rows == first_table.rows
    assert second_table.rows[0][2] == pytest.approx(plain_map.volumes_ml()[1])


def test_isolated_worker_keeps_the_model_for_its_next_run(case):
    logs: list[list[str]] = [[], []]
    labels = []
    with Runner(load_registry(), isolated=True) as runner:
        for attempt in range(2):
            outcome = runner.run(
                ANALYSIS_ID,
                AnalysisInputs(volume=case.image),
                device="cpu",
                on_log=lambda level, message, i=attempt: logs[i].append(message),
            )
            assert outcome.ok, outcome.error
            labels.append(outcome.results[0].volume.array)
    assert any(LOADED in m for m in logs[0]) and not any(REUSED in m for m in logs[0])
    assert any(REUSED in m for m in logs[1])
    assert np.array_equal(labels[0], labels[1])


GRIDS = {
    "axial": ((0.7, 0.7, 1.5), ACQUISITIONS["axial"]),
    "coronal": ((1.2, 1.2, 4.0), ACQUISITIONS["coronal"]),
    "sagittal, left-right flipped": ((0.9, 1.1, 2.5), np.diag([-1.0, 1.0, 1.0])),
    "oblique": ((1.3, 1.3, 4.0), rotation_matrix(np.array([1.0, 0.3, 0.2]), 17.0)),
    "near 45 degrees": ((1.0, 1.0, 2.0), rotation_matrix(np.array([0.0, 0.0, 1.0]), 44.9)),
}


@pytest.mark.parametrize("name", GRIDS)
def test_network_input_equals_monai_orientation_spacing_and_window(name):
    spacing, direction = GRIDS[name]
    rng = np.random.default_rng(3)
    array = rng.normal(40.0, 150.0, (23, 31, 27)).astype(np.float32)
    volume = Volume(array, spacing, (12.0, -30.0, 4.0), direction)
    config = default_model_config()
    image, grid = network_input(volume, config)
    data, _ = preprocess(volume, config)
    reference = data["image"].as_tensor()[None]
    assert image.shape == reference.shape and image.dtype == torch.float32
    assert torch.allclose(image, reference, atol=1e-5, rtol=0)
    assert grid.is_close(metatensor_geometry(data["image"]))
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0


@pytest.mark.parametrize("name", ["axial", "coronal", "sagittal, left-right flipped"])
def test_network_input_in_slabs_on_threads_equals_monai(name, monkeypatch):
    """A large series is resampled slab by slab on several threads: slabs of a few planes
    here, a read-only series as the host hands it over; the same input as MONAI's transforms
    and the series unchanged."""
    import workstation_monai_segmentation.preprocessing as preprocessing

    monkeypatch.setattr(preprocessing, "SLAB_BYTES", 3 * 31 * 27 * 4)
    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    spacing, direction = GRIDS[name]
    array = np.random.default_rng(4).normal(40.0, 150.0, (23, 31, 27)).astype(np.float32)
    array.flags.writeable = False
    volume = Volume(array, spacing, (12.0, -30.0, 4.0), direction)
    try:
        image, grid = network_input(volume, default_model_config())
    finally:
        torch.set_num_threads(threads)
    data, _ = preprocess(volume, default_model_config())
    assert torch.allclose(image, data["image"].as_tensor()[None], atol=1e-5, rtol=0)
    assert grid.is_close(metatensor_geometry(data["image"]))
    assert np.array_equal(
        volume.array, np.random.default_rng(4).normal(40.0, 150.0, (23, 31, 27)).astype(np.float32)
    )


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("layout", ["zyx", "ijk view"])
def test_labels_back_equal_the_arg_max_of_every_map_interpolated(seed, layout):
    """The fast way back (nearest label, interpolating only where a 2x2x2 cell mixes labels)
    against interpolating every class map at every source voxel, on random grids: parallel
    and tilted, one network axis of a single voxel, probabilities as torch leaves them
    ((C, i, j, k) memory seen as (C, z, y, x)) or contiguous."""
    from scipy import ndimage

    from workstation.plugins.api import Geometry

    rng = np.random.default_rng(seed)
    shape = (1, 9, 11) if seed == 3 else tuple(int(n) for n in rng.integers(6, 12, size=3))
    raw = (
        ndimage.gaussian_filter(rng.random((4, *shape)), (0, 1.5, 1.5, 1.5))
        if seed != 3
        else (ndimage.gaussian_filter(rng.random((4, *shape)), (0, 0, 1.5, 1.5)))
    )
    maps = (raw / raw.sum(axis=0)).astype(np.float32)
    if layout == "ijk view":
        maps = np.ascontiguousarray(maps.transpose(0, 3, 2, 1)).transpose(0, 3, 2, 1)
    network = Geometry(shape, (2.0, 2.0, 2.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    tilt = np.eye(3) if seed % 2 == 0 else rotation_matrix(np.array([1.0, 0.4, 0.2]), 15.0)
    source = Geometry(
        tuple(int(n) * 2 for n in shape), (0.9, 1.1, 1.0), (-1.0, 0.5, 0.3), tuple(tilt.ravel())
    )
    fast = labels_to_source_grid(maps, network, source)
    to_network = np.linalg.inv(network.index_to_world_matrix) @ source.index_to_world_matrix
    zyx = np.indices(source.shape).reshape(3, -1).astype(float)
    ijk = to_network[:3, :3] @ zyx[::-1] + to_network[:3, 3:]
    every = np.stack([ndimage.map_coordinates(m, ijk[::-1], order=1, mode="nearest") for m in maps])
    assert np.array_equal(fast, every.argmax(axis=0).reshape(source.shape).astype(np.uint8))


def test_network_input_of_an_integer_series_equals_its_float_copy_and_leaves_it_unchanged():
    """CT stored as int16 HU on the network's own spacing (no resampling: views of the series)
    gives the same input as the same values in float32, and the series' array is untouched."""
    spacing, direction = (2.0, 2.0, 2.0), np.diag([-1.0, 1.0, 1.0])
    rng = np.random.default_rng(5)
    stored = rng.integers(-1000, 1500, (12, 14, 10)).astype(np.int16)
    kept = stored.copy()
    config = default_model_config()
    as_int = network_input(Volume(stored, spacing, (1.0, 2.0, 3.0), direction), config)[0]
    as_float = network_input(
        Volume(stored.astype(np.float32), spacing, (1.0, 2.0, 3.0), direction), config
    )[0]
    assert as_int.dtype == torch.float32 and as_int.is_contiguous()
    assert torch.equal(as_int, as_float)
    assert np.array_equal(stored, kept)


def test_labels_back_on_a_grid_coarser_along_one_axis_and_finer_along_another():
    """Nearest-neighbour takes that shrink one axis and grow the others give the labels of
    interpolating every class map at every source voxel."""
    from scipy import ndimage

    from workstation.plugins.api import Geometry

    rng = np.random.default_rng(11)
    shape = (10, 12, 9)
    raw = ndimage.gaussian_filter(rng.random((3, *shape)), (0, 1.5, 1.5, 1.5))
    maps = (raw / raw.sum(axis=0)).astype(np.float32)
    network = Geometry(shape, (2.0, 2.0, 2.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    source = Geometry((6, 25, 20), (0.85, 0.9, 3.1), (0.4, -0.7, 0.2), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    fast = labels_to_source_grid(maps, network, source)
    to_network = np.linalg.inv(network.index_to_world_matrix) @ source.index_to_world_matrix
    zyx = np.indices(source.shape).reshape(3, -1).astype(float)
    ijk = to_network[:3, :3] @ zyx[::-1] + to_network[:3, 3:]
    every = np.stack([ndimage.map_coordinates(m, ijk[::-1], order=1, mode="nearest") for m in maps])
    assert np.array_equal(fast, every.argmax(axis=0).reshape(source.shape).astype(np.uint8))


def every_map_interpolated(probabilities, network, source):
    """The reference way back: every class map interpolated at every source voxel, then the
    arg-max."""
    from scipy import ndimage

    to_network = np.linalg.inv(network.index_to_world_matrix) @ source.index_to_world_matrix
    zyx = np.indices(source.shape).reshape(3, -1).astype(float)
    ijk = to_network[:3, :3] @ zyx[::-1] + to_network[:3, 3:]
    every = np.stack(
        [ndimage.map_coordinates(m, ijk[::-1], order=1, mode="nearest") for m in probabilities]
    )
    return every.argmax(axis=0).reshape(source.shape).astype(np.uint8)


WAY_BACK_GRIDS = {
    # source (shape z, y, x; spacing x, y, z; origin; direction) over about the extent of a
    # 2 mm network grid of (9, 10, 11) voxels
    "flipped in-plane, 0.7 mm": (
        (12, 28, 31),
        (0.7, 0.7, 1.5),
        (21.3, 19.4, 0.2),
        (-1, 0, 0, 0, -1, 0, 0, 0, 1),
    ),
    "flipped through-plane, 3 mm": (
        (6, 18, 17),
        (1.3, 1.1, 3.0),
        (0.3, 0.2, 16.5),
        (1, 0, 0, 0, 1, 0, 0, 0, -1),
    ),
    "0.09 mm, blended voxel by voxel": (
        (50, 45, 40),
        (0.09, 0.09, 0.09),
        (6.3, 7.2, 8.1),
        (1, 0, 0, 0, 1, 0, 0, 0, 1),
    ),
    "tilted 15 degrees": (
        (12, 20, 22),
        (1.0, 0.9, 1.4),
        (0.5, 0.4, 0.3),
        tuple(rotation_matrix(np.array([1.0, 0.4, 0.2]), 15.0).ravel()),
    ),
}


@pytest.mark.parametrize("name", WAY_BACK_GRIDS)
@pytest.mark.parametrize("logits", [False, True], ids=["probabilities", "logits"])
def test_labels_back_on_flipped_far_finer_and_tilted_grids(name, logits):
    """Series whose axes run against the network's, one so much finer that a network cell
    covers thousands of its voxels (blended voxel by voxel), and a tilted one: the labels of
    interpolating every probability map at every voxel, from probabilities or from the raw
    network outputs."""
    from scipy import ndimage

    from workstation.plugins.api import Geometry

    rng = np.random.default_rng(len(name))
    shape = (9, 10, 11)
    raw = ndimage.gaussian_filter(rng.normal(size=(3, *shape)), (0, 1.2, 1.2, 1.2)) * 8.0
    scores = np.ascontiguousarray(raw.astype(np.float32).transpose(0, 3, 2, 1)).transpose(
        0, 3, 2, 1
    )  # torch's (C, i, j, k) memory seen as (C, z, y, x)
    probabilities = np.exp(scores.astype(np.float64))
    probabilities /= probabilities.sum(axis=0)
    network = Geometry(shape, (2.0, 2.0, 2.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    source = Geometry(*WAY_BACK_GRIDS[name])
    given = scores if logits else probabilities.astype(np.float32)
    fast = labels_to_source_grid(given, network, source, logits=logits)
    expected = every_map_interpolated(probabilities, network, source)
    assert len(np.unique(expected)) == 3  # the grid crosses every class boundary
    assert np.array_equal(fast, expected)


@pytest.mark.parametrize("finer", [2, 20], ids=["by cells", "voxel by voxel"])
def test_labels_back_memory_stays_near_the_label_map_on_noisy_scores(finer, monkeypatch):
    """Scores so noisy that nearly every network cell mixes labels: beyond the label map the
    blend keeps a few bytes per mixed cell and blocks of a set size (a first version held
    about 100 bytes per mixed cell at once: 7.4 MB here, 14x the label map)."""
    import tracemalloc

    import workstation_monai_segmentation.labels_back as labels_back

    from workstation.plugins.api import Geometry

    monkeypatch.setattr(labels_back, "CELL_BLOCK_VALUES", 4096)
    shape = (40, 40, 40) if finer == 2 else (4, 4, 4)
    scores = np.random.default_rng(0).normal(size=(3, *shape)).astype(np.float32) * 4
    network = Geometry(shape, (2.0, 2.0, 2.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    spacing = 2.0 / finer
    source = Geometry(
        tuple(n * finer for n in shape),
        (spacing,) * 3,
        (-0.5 + spacing / 2,) * 3,
        (1, 0, 0, 0, 1, 0, 0, 0, 1),
    )
    tracemalloc.start()
    try:
        fast = labels_to_source_grid(scores, network, source, logits=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    probabilities = np.exp(scores.astype(np.float64))
    probabilities /= probabilities.sum(axis=0)
    assert labels_back.mixed_cells(labels_back.argmax_labels(scores)).mean() > 0.8
    assert np.array_equal(fast, every_map_interpolated(probabilities, network, source))
    assert peak < 4 * fast.nbytes


def test_labels_back_of_an_oblique_series_on_its_own_network_grid_are_read_per_axis(
    monkeypatch,
):
    """The network grid keeps an oblique series' axes (MONAI's Spacingd does), so the two grids
    are parallel up to rounding: the labels are read per axis, not through the slower path for
    tilted grids, and equal interpolating every map at every voxel."""
    import workstation_monai_segmentation.labels_back as labels_back
    from scipy import ndimage

    from workstation.plugins.api import Geometry

    def tilted(*args, **kwargs):
        raise AssertionError("an oblique series on its own network grid took the tilted path")

    monkeypatch.setattr(labels_back, "_labels_on_tilted_grid", tilted)
    direction = tuple(rotation_matrix(np.array([1.0, 0.3, 0.2]), 17.0).ravel())
    shape = (9, 10, 11)
    raw = ndimage.gaussian_filter(np.random.default_rng(2).random((3, *shape)), (0, 1, 1, 1))
    probabilities = (raw / raw.sum(axis=0)).astype(np.float32)
    network = Geometry(shape, (2.0, 2.0, 2.0), (3.0, -4.0, 5.0), direction)
    source = Geometry((12, 25, 27), (0.8, 0.8, 1.5), (2.7, -4.2, 4.4), direction)
    assert not np.allclose(network.index_to_world_matrix[:3, :3], np.diag([2.0, 2.0, 2.0]))
    fast = labels_to_source_grid(probabilities, network, source)
    expected = every_map_interpolated(probabilities.astype(np.float64), network, source)
    assert len(np.unique(expected)) == 3
    assert np.array_equal(fast, expected)


@pytest.mark.parametrize("dtype", [np.float16, np.bool_])
def test_network_input_of_half_float_and_mask_series_equals_monai(dtype):
    """Series stored as float16 or as a mask on the network's own spacing: windowed in float32
    like MONAI's transforms, not in the series' own type."""
    rng = np.random.default_rng(6)
    values = (
        rng.normal(40.0, 150.0, (10, 12, 14))
        if dtype is np.float16
        else rng.random((10, 12, 14)) > 0.5
    )
    volume = Volume(values.astype(dtype), (2.0, 2.0, 2.0), (1.0, 2.0, 3.0), np.diag([-1, 1, 1]))
    image, _ = network_input(volume, default_model_config())
    reference = preprocess(volume, default_model_config())[0]["image"].as_tensor()[None]
    assert image.dtype == torch.float32
    assert torch.allclose(image, reference, atol=1e-6, rtol=0)


def test_nan_network_scores_fail_the_run_with_a_message_not_a_background_map(case):
    """Weights that overflow (e.g. under fp16) give NaN scores, whose arg-max would be an
    all-background label map: the segmentation stops and says why."""
    from pathlib import Path

    from workstation_monai_segmentation.inference import SegmentationModel, segment

    from workstation.models import ModelError

    class Overflowing(torch.nn.Module):
        def forward(self, image):
            scores = torch.zeros((image.shape[0], 3, *image.shape[2:]))
            scores[:, :, 4:8] = float("nan")
            return scores

    model = SegmentationModel(Overflowing(), default_model_config(), Path("broken.pt"), False)
    with pytest.raises(ModelError, match=r"NaN or infinite scores .*broken\.pt.*fp32"):
        segment(case.image, model, roi_size=32)
