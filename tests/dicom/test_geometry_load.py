"""Series -> Volume geometry against an analytic truth: every voxel, every orientation.

The phantom's value is a linear function of the LPS position, so a flipped, shifted, swapped or
mis-spaced axis changes values; comparing every voxel checks the whole geometry at once.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from workstation.dicom.headers import read_header
from workstation.dicom.loader import load_frames
from workstation.dicom.stacks import group_stacks
from workstation.testing.phantoms import grid_centres, write_analytic_series

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

ORIENTATIONS = ["axial", "coronal", "sagittal", "oblique"]


def frames_of(paths):
    return [frame for path in paths for frame in read_header(path).frames]


def load(series):
    return load_frames(frames_of(series.paths))


@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_every_voxel_matches_the_function_at_its_centre(tmp_path, orientation, modality):
    series = write_analytic_series(
        tmp_path,
        orientation=orientation,
        modality=modality,
        shape=(9, 14, 17),
        spacing=(0.7, 1.1, 2.0),  # non-square pixels
        intercept=-1024.0 if modality == "CT" else -300.0,
        shuffle=True,
        reverse_instance_numbers=True,
    )
    volume = load(series)
    assert volume.shape == series.shape
    assert volume.array.dtype == np.int16
    np.testing.assert_allclose(volume.spacing, series.spacing, atol=1e-5)
    np.testing.assert_allclose(volume.origin, series.origin, atol=1e-4)
    np.testing.assert_allclose(volume.direction, series.direction, atol=1e-6)
    np.testing.assert_array_equal(volume.array, series.truth(grid_centres(volume)))
    assert volume.warnings == []
    assert volume.geometry.orientation_label() == (
        "oblique" if orientation == "oblique" else orientation
    )
    assert volume.source.series_uid == series.series_uid


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_nifti_export_maps_voxel_centres_to_ras(tmp_path, orientation):
    series = write_analytic_series(tmp_path / "dcm", orientation=orientation, shape=(7, 10, 12))
    volume = load(series)
    path = tmp_path / "out.nii.gz"
    nib.save(volume.to_nifti(), path)
    image = nib.load(path)
    data = np.asanyarray(image.dataobj)  # (i, j, k) = (x, y, z)
    i, j, k = np.meshgrid(*(np.arange(n) for n in data.shape), indexing="ij")
    ijk1 = np.stack([i, j, k, np.ones_like(i)], axis=-1).astype(float)
    ras = ijk1 @ image.affine.T
    lps = ras[..., :3] * np.array([-1.0, -1.0, 1.0])
    np.testing.assert_array_equal(data, series.truth(lps))
    assert image.header.get_xyzt_units()[0] == "mm"


@pytest.mark.parametrize("orientation", ["axial", "sagittal", "oblique"])
def test_same_as_simpleitk_image_series_reader(tmp_path, orientation):
    series = write_analytic_series(tmp_path, orientation=orientation, shape=(8, 12, 10))
    volume = load(series)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(
        sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(tmp_path), series.series_uid)
    )
    image = reader.Execute()
    np.testing.assert_array_equal(volume.array, sitk.GetArrayFromImage(image))
    np.testing.assert_allclose(volume.origin, image.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(volume.spacing, image.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(volume.direction.ravel(), image.GetDirection(), atol=1e-5)


def test_enhanced_multiframe_with_shuffled_frames(tmp_path):
    series = write_analytic_series(tmp_path, enhanced=True, orientation="coronal", shape=(8, 10, 9))
    volume = load(series)
    np.testing.assert_array_equal(volume.array, series.truth(grid_centres(volume)))
    np.testing.assert_allclose(volume.origin, series.origin, atol=1e-4)


def test_missing_slice_keeps_spacing_and_is_reported(tmp_path):
    series = write_analytic_series(tmp_path, slice_positions=[0, 1, 2, 4, 5, 6], shape=(6, 8, 9))
    volume = load(series)
    assert volume.shape == (7, 8, 9)
    assert volume.spacing[2] == pytest.approx(series.spacing[2])
    truth = series.truth(grid_centres(volume))
    present = [0, 1, 2, 4, 5, 6]
    np.testing.assert_array_equal(volume.array[present], truth[present])
    assert np.all(volume.array[3] == volume.array.min())  # visibly blank, not invented
    assert any("1 missing slice" in w for w in volume.warnings)


def test_non_uniform_spacing_resampled_and_reported(tmp_path):
    series = write_analytic_series(
        tmp_path, slice_positions=[0, 1, 2, 3.5, 4.5, 5.5, 6.5], shape=(7, 8, 9)
    )
    volume = load(series)
    assert any("non-uniform slice spacing" in w for w in volume.warnings)
    extent = 6.5 * series.spacing[2]
    assert (volume.shape[0] - 1) * volume.spacing[2] == pytest.approx(extent)
    # A linear function survives linear interpolation, up to stored-value rounding.
    assert np.abs(volume.array - series.truth(grid_centres(volume))).max() <= 1


def test_gantry_tilt_resampled_onto_orthogonal_grid(tmp_path):
    series = write_analytic_series(tmp_path, tilt_deg=20.0, shape=(8, 12, 10))
    volume = load(series)
    assert any("gantry tilt" in w and "20.00 degrees" in w for w in volume.warnings)
    direction = volume.direction
    np.testing.assert_allclose(direction.T @ direction, np.eye(3), atol=1e-9)
    assert volume.shape[1] > 12  # the grid grows to hold every shifted slice
    # Every voxel covered by acquired data carries the function's value at its centre.
    truth = series.truth(grid_centres(volume))
    inside = volume.array != volume.array.min()  # outside the acquired slices: the fill value
    assert inside.mean() > 0.5
    assert np.abs(volume.array - truth)[inside].max() <= 1


def test_duplicate_positions_use_one_frame_and_name_the_others(tmp_path):
    series = write_analytic_series(tmp_path / "a", shape=(5, 6, 7), shuffle=False)
    copy = write_analytic_series(
        tmp_path / "b",
        shape=(5, 6, 7),
        slice_positions=[2],
        series_uid=series.series_uid,
        study_uid=series.study_uid,
    )
    volume = load_frames(frames_of(series.paths + copy.paths))
    assert volume.shape == (5, 6, 7)
    assert any("duplicate positions" in w and "1 frame" in w for w in volume.warnings)
    duplicated = next(w for w in volume.warnings if "duplicate" in w)
    assert str(copy.paths[0]) in duplicated or str(series.paths[2]) in duplicated


def test_series_with_two_orientations_splits_into_two_stacks(tmp_path):
    axial = write_analytic_series(tmp_path / "ax", shape=(6, 8, 8))
    coronal = write_analytic_series(
        tmp_path / "co",
        orientation="coronal",
        shape=(4, 8, 8),
        series_uid=axial.series_uid,
        study_uid=axial.study_uid,
    )
    stacks = group_stacks(frames_of(axial.paths + coronal.paths))
    assert [len(s) for s in stacks] == [6, 4]
    second = load_frames(stacks[1])
    assert second.geometry.orientation_label() == "coronal"
    np.testing.assert_array_equal(second.array, coronal.truth(grid_centres(second)))
    both = load_frames(frames_of(axial.paths + coronal.paths))
    assert both.shape == (6, 8, 8)
    assert any("2 stacks" in w for w in both.warnings)


def test_order_never_comes_from_instance_number_or_names(tmp_path):
    series = write_analytic_series(
        tmp_path, shape=(6, 5, 5), shuffle=True, reverse_instance_numbers=True, seed=3
    )
    stack = group_stacks(frames_of(series.paths))[0]
    z = [f.position[2] for f in stack]
    assert z == sorted(z)
    assert [f.instance_number for f in stack] == [6, 5, 4, 3, 2, 1]


def test_stack_geometry_matches_the_loaded_volume_without_reading_pixels(tmp_path):
    from workstation.dicom.stacks import stack_geometry

    series = write_analytic_series(tmp_path, tilt_deg=10.0, orientation="sagittal", shape=(6, 8, 9))
    frames = frames_of(series.paths)
    volume = load_frames(frames)
    for path in series.paths:
        path.unlink()  # `show` works from the index alone
    grid, warnings = stack_geometry(frames)
    assert volume.geometry.is_close(grid)
    assert warnings == volume.warnings and any("gantry tilt" in w for w in warnings)
