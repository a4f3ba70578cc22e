"""The NIfTI and NRRD/MetaImage readers: geometry in LPS, values, and errors naming the file."""

from __future__ import annotations

import numpy as np
import pytest

from workstation.core.volume import Volume


def _oblique_volume() -> Volume:
    """A volume whose every axis differs (shape, spacing, origin) and whose direction is not
    axis-aligned, so any flipped or swapped axis is caught."""
    angle = np.radians(25.0)
    direction = np.array(
        [[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]]
    )
    array = np.arange(5 * 6 * 7, dtype=np.int16).reshape(5, 6, 7) - 100
    return Volume(array, (0.7, 0.9, 2.5), (-30.0, 12.5, 80.0), direction)


def _same(a: Volume, b: Volume) -> None:
    np.testing.assert_array_equal(a.array, b.array)
    np.testing.assert_allclose(a.spacing, b.spacing, atol=1e-5)
    np.testing.assert_allclose(a.origin, b.origin, atol=1e-4)
    np.testing.assert_allclose(a.direction, b.direction, atol=1e-5)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti_reads_back_in_lps(tmp_path, suffix):
    import nibabel as nib
    from workstation_readers.read import read_nifti

    original = _oblique_volume()
    path = tmp_path / f"image{suffix}"
    nib.save(original.to_nifti(), path)
    volume = read_nifti(str(path))
    _same(volume, original)
    # voxel [0, 0, 0] is at the LPS origin, whatever RAS the file holds
    np.testing.assert_allclose(volume.index_to_world((0, 0, 0)), original.origin, atol=1e-4)
    assert volume.metadata["format"] == "NIfTI"


def test_nifti_scaling_is_applied(tmp_path):
    import nibabel as nib
    from workstation_readers.read import read_nifti

    original = _oblique_volume()
    image = original.to_nifti()
    image.header.set_slope_inter(2.0, -1024.0)
    path = tmp_path / "scaled.nii.gz"
    nib.save(image, path)
    volume = read_nifti(str(path))
    np.testing.assert_allclose(volume.array, original.array * 2.0 - 1024.0)


@pytest.mark.parametrize("suffix", [".nrrd", ".mha", ".mhd"])
def test_itk_formats_read_back_in_lps(tmp_path, suffix):
    import SimpleITK as sitk
    from workstation_readers.read import read_itk

    original = _oblique_volume()
    path = tmp_path / f"image{suffix}"
    sitk.WriteImage(original.to_sitk(), str(path))
    _same(read_itk(str(path)), original)


def test_broken_files_name_the_file(tmp_path):
    from workstation_readers.read import ReadError, read_itk, read_nifti

    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not a nifti file at all")
    with pytest.raises(ReadError, match=r"broken\.nii\.gz"):
        read_nifti(str(bad))
    bad_nrrd = tmp_path / "broken.nrrd"
    bad_nrrd.write_text("NRRD0004\ntype: what\n")
    with pytest.raises(ReadError, match=r"broken\.nrrd"):
        read_itk(str(bad_nrrd))
    with pytest.raises(ReadError, match=r"missing\.mha: no such file"):
        read_itk(str(tmp_path / "missing.mha"))


def test_readers_are_registered_for_their_extensions(plugin_manager_factory):
    registry = plugin_manager_factory("workstation_readers.plugin").registry()
    assert registry.problems == []
    assert registry.reader_for("scan.nii.gz").spec.id == "readers.nifti"
    assert registry.reader_for("SCAN.NII").spec.id == "readers.nifti"
    assert registry.reader_for("scan.nrrd").spec.id == "readers.itk"
    assert registry.reader_for("scan.dcm") is None


def test_workstation_input_path_uses_the_reader(tmp_path, plugin_manager_factory):
    """What `workstation run --input scan.nii.gz` does: the file is opened by this plugin."""
    import nibabel as nib

    from workstation.plugins.inputs import from_path

    original = _oblique_volume()
    path = tmp_path / "scan.nii.gz"
    nib.save(original.to_nifti(), path)
    registry = plugin_manager_factory("workstation_readers.plugin").registry()
    inputs = from_path(path, registry)
    _same(inputs.volume, original)
    assert inputs.series is None and inputs.source_path == str(path)
