"""Pixel values of a loaded Volume: rescale per frame, dtype rule, MONOCHROME1, RGB, padding,
stored-bit masking, and clear errors for vanished files and undecodable pixel data."""

from __future__ import annotations

import os

import numpy as np
import pydicom
import pytest

from workstation.dicom.headers import read_header
from workstation.dicom.loader import CT_PADDING_HU, load_frames
from workstation.dicom.records import DicomProblem
from workstation.testing.phantoms import grid_centres, write_analytic_series

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def frames_of(paths):
    return [frame for path in paths for frame in read_header(path).frames]


def test_per_frame_integer_rescale_stays_int16(tmp_path):
    def rescale(k):
        return (1 + k % 3, -1000 + 7 * k)

    series = write_analytic_series(tmp_path, shape=(6, 8, 9), per_frame_rescale=rescale)
    volume = load_frames(frames_of(series.paths))
    assert volume.array.dtype == np.int16
    centres = grid_centres(volume)
    for k in range(6):
        slope, intercept = rescale(k)
        np.testing.assert_array_equal(volume.array[k], series.truth(centres[k], slope, intercept))


def test_fractional_rescale_gives_float32_in_enhanced_files(tmp_path):
    def rescale(k):
        return (0.5 + 0.25 * k, -1000.5 + k)

    series = write_analytic_series(
        tmp_path, enhanced=True, shape=(5, 8, 9), per_frame_rescale=rescale
    )
    volume = load_frames(frames_of(series.paths))
    assert volume.array.dtype == np.float32
    centres = grid_centres(volume)
    for k in range(5):
        slope, intercept = rescale(k)
        np.testing.assert_allclose(
            volume.array[k], series.truth(centres[k], slope, intercept), atol=1e-3
        )


def test_values_beyond_int16_give_float32(tmp_path):
    def shift_up(ds, k):
        ds.RescaleIntercept = 39500  # stored values as written for -500, so values = f + 40000

    series = write_analytic_series(tmp_path, modality="MR", shape=(3, 6, 6), extra=shift_up)
    volume = load_frames(frames_of(series.paths))
    assert volume.array.dtype == np.float32
    np.testing.assert_array_equal(volume.array, series.truth(grid_centres(volume)) + 40000)


@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_monochrome1_is_inverted_onto_the_same_range(tmp_path, modality):
    series = write_analytic_series(
        tmp_path, modality=modality, photometric="MONOCHROME1", shape=(4, 6, 7)
    )
    volume = load_frames(frames_of(series.paths))
    # The phantom stores MONOCHROME1 values inverted, so the loader's inversion restores them.
    np.testing.assert_array_equal(volume.array, series.truth(grid_centres(volume)))
    assert volume.metadata["inverted_monochrome1"] is True


def test_pixel_padding_becomes_air_in_ct(tmp_path):
    pad = -2000

    def padded(ds, k):
        ds.PixelPaddingValue = pad
        values = np.frombuffer(ds.PixelData, np.int16).reshape(ds.Rows, ds.Columns).copy()
        values[:, :2] = pad
        ds.PixelData = values.tobytes()

    series = write_analytic_series(tmp_path, shape=(3, 6, 7), extra=padded)
    frame = read_header(series.paths[0]).frames[0]
    assert frame.pixel_padding_value == pad
    volume = load_frames(frames_of(series.paths))
    assert np.all(volume.array[:, :, :2] == CT_PADDING_HU)
    truth = series.truth(grid_centres(volume))
    np.testing.assert_array_equal(volume.array[:, :, 2:], truth[:, :, 2:])
    assert volume.metadata["padding_value"] == CT_PADDING_HU


def test_bits_above_bits_stored_are_ignored_and_signs_extended(tmp_path):
    def twelve_bit(ds, k):
        values = np.frombuffer(ds.PixelData, np.int16).copy()
        assert values.min() >= -2048 and values.max() < 2048
        garbage = (values.view(np.uint16) & 0x0FFF) | 0x5000  # overlay bits set above bit 11
        ds.PixelData = garbage.astype(np.uint16).tobytes()
        ds.BitsStored, ds.HighBit = 12, 11

    series = write_analytic_series(tmp_path, shape=(3, 6, 7), intercept=-100.0, extra=twelve_bit)
    volume = load_frames(frames_of(series.paths))
    np.testing.assert_array_equal(volume.array, series.truth(grid_centres(volume)))


def test_rgb_keeps_colour_beside_luminance(tmp_path):
    from pydicom.data import get_testdata_file

    path = get_testdata_file("SC_rgb_rle_2frame.dcm", download=False)
    ds = pydicom.dcmread(path)
    volume = load_frames(read_header(path).frames)
    rgb = ds.pixel_array
    assert volume.metadata["rgb"].shape == rgb.shape
    assert volume.array.dtype == np.int16
    np.testing.assert_array_equal(volume.metadata["rgb"], rgb)
    luminance = np.rint(rgb @ np.array([0.299, 0.587, 0.114]))
    np.testing.assert_array_equal(volume.array, luminance)
    assert any("not placed in patient space" in w for w in volume.warnings)


def test_vanished_file_is_named(tmp_path):
    series = write_analytic_series(tmp_path, shape=(3, 5, 5))
    frames = frames_of(series.paths)
    os.remove(series.paths[1])
    with pytest.raises(DicomProblem) as caught:
        load_frames(frames)
    assert caught.value.path == str(series.paths[1])
    assert "no longer exists" in str(caught.value)


def test_file_shortened_since_indexing_is_named(tmp_path):
    series = write_analytic_series(tmp_path, shape=(3, 5, 5))
    frames = frames_of(series.paths)
    data = series.paths[2].read_bytes()
    series.paths[2].write_bytes(data[:-10])
    with pytest.raises(DicomProblem) as caught:
        load_frames(frames)
    assert caught.value.path == str(series.paths[2]) and "truncated" in caught.value.reason


def test_unsupported_transfer_syntax_names_file_and_syntax(tmp_path):
    series = write_analytic_series(tmp_path, shape=(2, 8, 8), transfer_syntax="1.2.840.10008.1.2.5")
    ds = pydicom.dcmread(series.paths[0])
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2: no image decoder
    ds.save_as(series.paths[0])
    frames = frames_of(series.paths)
    with pytest.raises(DicomProblem) as caught:
        load_frames(frames)
    assert caught.value.path == str(series.paths[0])
    assert "1.2.840.10008.1.2.4.100" in caught.value.reason


def test_demo_ct_phantom_loads_in_hounsfield_units(tmp_path):
    from workstation.testing.phantoms import LABELS, ct_phantom, write_ct_phantom_series

    shape, spacing = (12, 64, 64), (1.5, 1.5, 5.0)
    paths = write_ct_phantom_series(tmp_path, shape=shape, spacing=spacing, patient_id="DEMO-9")
    header = read_header(paths[0])
    assert header.patient_id == "DEMO-9" and header.synthetic
    assert header.sop_class_uid == "1.2.840.10008.5.1.4.1.1.2"
    volume = load_frames(frames_of(paths))
    hu, labels = ct_phantom(shape, spacing)
    np.testing.assert_array_equal(volume.array, hu)
    assert volume.spacing == spacing and volume.metadata["units"] == "HU"
    medians = {LABELS[v]: np.median(hu[labels == v]) for v in np.unique(labels) if v}
    assert medians["lung"] < -700 < medians["body"] < 100 < medians["bone"]
    assert "lesion" in medians and "liver" in medians


def test_demo_mr_phantom_loads_as_unsigned_mr(tmp_path):
    from workstation.testing.phantoms import write_mr_phantom_series

    paths = write_mr_phantom_series(tmp_path, shape=(6, 48, 48), spacing=(2.0, 2.0, 5.0))
    volume = load_frames(frames_of(paths))
    assert volume.shape == (6, 48, 48) and volume.metadata["modality"] == "MR"
    assert volume.array.dtype == np.int16 and volume.array.min() >= 0
    assert volume.array.max() > 500  # fluid-bright lesions and kidneys
