"""Slices in patient planes for every acquisition orientation (no display needed)."""

from __future__ import annotations

import numpy as np
import pytest

from workstation.gui.mpr import Plane, direction_letters, edge_letters, slice_grid

ORIENTATIONS = ["axial", "axial_flipped", "coronal", "sagittal", "oblique"]


@pytest.mark.parametrize("acquisition", ORIENTATIONS)
@pytest.mark.parametrize("plane", list(Plane))
def test_marker_lands_where_the_plane_geometry_says(synth, acquisition, plane):
    volume = synth.make_volume(synth.acquisitions[acquisition], spacing=(0.8, 0.9, 2.0))
    target = np.array([5.0, -4.0, 6.0])  # patient left, anterior, superior of the centre
    synth.put_marker(volume, target, 1000, radius=2)
    marker_centre = volume.index_to_world(np.rint(volume.world_to_index(target)))
    grid = slice_grid(volume.geometry, plane)
    column, row, _s = grid.from_world(marker_centre)
    image = grid.extract(volume.array, grid.nearest_slice(marker_centre))
    assert image[round(row), round(column)] == pytest.approx(1000, abs=1)
    far = image[(round(row) + image.shape[0] // 2) % image.shape[0], 0]
    assert far < 500


@pytest.mark.parametrize("acquisition", ["axial", "axial_flipped", "coronal", "sagittal"])
def test_aligned_acquisitions_are_array_views_with_spacing_aspect(synth, acquisition):
    volume = synth.make_volume(synth.acquisitions[acquisition], spacing=(0.5, 0.7, 3.0))
    for plane in Plane:
        grid = slice_grid(volume.geometry, plane)
        assert grid.aligned is not None
        image = grid.extract(volume.array, grid.slices // 2)
        assert np.shares_memory(image, volume.array)  # no copy for aligned data
        assert image.shape == (grid.rows, grid.columns)
    coronal = slice_grid(volume.geometry, Plane.CORONAL)
    # coronal rows run head to foot: their spacing is the through-plane 3 mm for an axial series
    if acquisition.startswith("axial"):
        assert coronal.pixel_size == (0.5, 3.0)


def test_oblique_acquisition_is_reformatted_on_a_patient_plane_grid(synth):
    volume = synth.make_volume(synth.acquisitions["oblique"], spacing=(0.8, 0.8, 1.5))
    grid = slice_grid(volume.geometry, Plane.AXIAL)
    assert grid.aligned is None
    assert grid.pixel_size == (0.8, 0.8)
    np.testing.assert_allclose(grid.axes.normal, [0, 0, 1])
    image = grid.extract(volume.array, 0)
    assert image.dtype == np.float32


def test_plane_letters_follow_the_radiological_convention():
    letters = {
        plane: edge_letters(slice_grid_axes(plane)[0], slice_grid_axes(plane)[1]) for plane in Plane
    }
    assert (letters[Plane.AXIAL].left, letters[Plane.AXIAL].right) == ("R", "L")
    assert (letters[Plane.AXIAL].top, letters[Plane.AXIAL].bottom) == ("A", "P")
    assert (letters[Plane.CORONAL].left, letters[Plane.CORONAL].top) == ("R", "S")
    assert (letters[Plane.SAGITTAL].left, letters[Plane.SAGITTAL].right) == ("A", "P")
    assert (letters[Plane.SAGITTAL].top, letters[Plane.SAGITTAL].bottom) == ("S", "I")


def slice_grid_axes(plane):
    from workstation.gui.mpr import PLANE_AXES

    return PLANE_AXES[plane].right, PLANE_AXES[plane].down


def test_oblique_directions_get_combined_letters_strongest_first():
    assert direction_letters([0.8, 0.6, 0.0]) == "LP"
    assert direction_letters([-0.3, 0.0, -0.95]) == "IR"
    assert direction_letters([0, 0, 2]) == "S"
    with pytest.raises(ValueError):
        direction_letters([0, 0, 0])
