"""Volume conversions are lossless (SimpleITK, NIfTI in RAS, torch) and resample_to is exact for
what it can be exact on, and slab by slab in memory."""

from __future__ import annotations

import tracemalloc

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from scipy.spatial.transform import Rotation

import workstation.core.volume as volume_module
from workstation.core.volume import Geometry, Volume


def rotated(degrees=(12.0, -20.0, 35.0)) -> np.ndarray:
    return Rotation.from_euler("xyz", degrees, degrees=True).as_matrix()


def centred(shape, spacing, direction) -> Geometry:
    """A grid whose centre is at the LPS origin."""
    half = np.asarray(spacing) * (np.asarray(shape[::-1]) - 1) / 2
    return Geometry(shape, spacing, tuple(-direction @ half), direction.ravel())


@pytest.fixture
def volume() -> Volume:
    rng = np.random.default_rng(1)
    array = rng.integers(-1024, 3000, size=(7, 9, 11)).astype(np.int16)
    return Volume(array, (0.7, 0.9, 2.5), (-10.5, 20.25, 3.0), rotated())


def test_simpleitk_round_trip_is_exact(volume):
    image = volume.to_sitk()
    assert image.GetSize() == (11, 9, 7)
    assert image.GetPixelID() == sitk.sitkInt16
    # SimpleITK's own index -> physical point agrees with the workstation's.
    np.testing.assert_allclose(
        image.TransformIndexToPhysicalPoint((3, 4, 5)), volume.index_to_world((3, 4, 5))
    )
    back = Volume.from_sitk(image)
    np.testing.assert_array_equal(back.array, volume.array)
    assert back.geometry.is_close(volume.geometry, tol_mm=1e-9)


def test_nifti_round_trip_through_a_file_is_exact(volume, tmp_path):
    path = tmp_path / "v.nii.gz"
    nib.save(volume.to_nifti(), path)
    image = nib.load(path)
    # RAS on disk: voxel (i, j, k) lands at LPS with x and y negated.
    ras = image.affine @ np.array([3, 4, 5, 1.0])
    np.testing.assert_allclose(ras[:3] * [-1, -1, 1], volume.index_to_world((3, 4, 5)), atol=1e-4)
    back = Volume.from_nifti(image)
    np.testing.assert_array_equal(back.array, volume.array)
    assert back.geometry.is_close(volume.geometry, tol_mm=1e-4)
    # SimpleITK reads the same file to the same LPS geometry.
    read = sitk.ReadImage(str(path))
    np.testing.assert_allclose(read.GetOrigin(), volume.origin, atol=1e-4)
    np.testing.assert_allclose(read.GetDirection(), volume.direction.ravel(), atol=1e-5)


def test_torch_round_trip_keeps_values_and_grid(volume):
    tensor = volume.to_torch()
    assert tuple(tensor.shape) == (1, 7, 9, 11)
    back = volume.from_torch(tensor * 2)
    np.testing.assert_array_equal(back.array, volume.array * 2)
    assert back.geometry == volume.geometry


def test_resample_onto_own_grid_is_a_copy(volume):
    out = volume.resample_to(volume)
    np.testing.assert_array_equal(out.array, volume.array)
    assert out.array is not volume.array


def test_resample_integer_voxel_shift_equals_slicing(volume):
    grid = volume.geometry
    origin = volume.index_to_world((2, 1, 3))
    sub = Geometry((3, 5, 6), grid.spacing, tuple(origin), grid.direction)
    out = volume.resample_to(sub, order=1)
    np.testing.assert_array_equal(out.array, volume.array[3:6, 1:6, 2:8])
    labels = volume.with_array((volume.array > 0).astype(np.uint8))
    out_labels = labels.resample_to(sub, order=0)
    assert out_labels.array.dtype == np.uint8
    np.testing.assert_array_equal(out_labels.array, labels.array[3:6, 1:6, 2:8])


def test_resample_reproduces_a_linear_function_on_a_rotated_grid():
    def f(points):
        return points @ np.array([0.5, -1.5, 2.0]) + 7.0

    source_grid = centred((30, 40, 36), (1.0, 0.8, 1.2), rotated())
    nz, ny, nx = source_grid.shape
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    centres = source_grid.index_to_world(np.stack([i, j, k], -1).astype(float))
    source = Volume.from_geometry(f(centres).astype(np.float32), source_grid)
    target = centred((10, 12, 11), (1.3, 1.1, 0.9), rotated((-30, 10, 5)))
    out = source.resample_to(target, order=1, fill_value=np.nan)
    k, j, i = np.meshgrid(*(np.arange(n) for n in target.shape), indexing="ij")
    expected = f(target.index_to_world(np.stack([i, j, k], -1).astype(float)))
    assert np.isfinite(out.array).all()  # the target lies inside the source
    np.testing.assert_allclose(out.array, expected, atol=1e-3)
    assert out.geometry.is_close(target)


def test_resample_works_slab_by_slab_in_memory(monkeypatch):
    source = Volume(np.ones((40, 128, 128), np.int16), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    target = Geometry((40, 128, 128), (1.0, 1.0, 1.0), (0.5, 0.25, 0.0), rotated((0, 0, 3)))
    monkeypatch.setattr(volume_module, "RESAMPLE_SLAB_VOXELS", 128 * 128 * 2)
    tracemalloc.start()
    out = source.resample_to(target, order=1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert out.array.dtype == np.int16
    assert peak < 1.5 * out.array.nbytes  # the output plus a small slab, never a full float copy
    assert out.array[20, 64, 64] == 1
