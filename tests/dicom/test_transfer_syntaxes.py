"""Every transfer syntax decodes to the same values: phantoms round-tripped through each encoder,
and the images pydicom ships (decoded by pydicom alone for comparison)."""

from __future__ import annotations

import os

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from workstation.dicom.headers import read_header
from workstation.dicom.loader import load_frames, padding_value
from workstation.testing.phantoms import (
    DCMTK_SYNTAXES,
    JPEG_BASELINE,
    LOSSLESS_SYNTAXES,
    dcmtk_available,
    grid_centres,
    write_analytic_series,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def frames_of(paths):
    return [frame for path in paths for frame in read_header(path).frames]


def needs_encoder(syntax: str) -> None:
    if syntax in DCMTK_SYNTAXES and not dcmtk_available():
        pytest.skip("dcmtk's dcmcjpeg writes JPEG phantoms: apt install dcmtk")


@pytest.mark.parametrize("enhanced", [False, True], ids=["classic", "enhanced"])
@pytest.mark.parametrize("syntax", LOSSLESS_SYNTAXES)
def test_lossless_syntax_round_trip_is_exact(tmp_path, syntax, enhanced):
    needs_encoder(syntax)
    series = write_analytic_series(
        tmp_path,
        transfer_syntax=syntax,
        enhanced=enhanced,
        shape=(4, 32, 32),
        orientation="oblique",
    )
    assert pydicom.dcmread(series.paths[0]).file_meta.TransferSyntaxUID == syntax
    volume = load_frames(frames_of(series.paths))
    assert volume.array.dtype == np.int16
    np.testing.assert_array_equal(volume.array, series.truth(grid_centres(volume)))


def test_jpeg_baseline_is_close_to_the_uncompressed_series(tmp_path):
    needs_encoder(JPEG_BASELINE)
    options = dict(
        modality="MR",
        bits_allocated=8,
        intercept=0.0,
        shape=(3, 16, 16),
        origin=(0.0, 0.0, 14.0),
        shuffle=False,
    )
    plain = write_analytic_series(tmp_path / "plain", **options)
    lossy = write_analytic_series(tmp_path / "jpeg", transfer_syntax=JPEG_BASELINE, **options)
    expected = load_frames(frames_of(plain.paths))
    volume = load_frames(frames_of(lossy.paths))
    np.testing.assert_array_equal(expected.array, plain.truth(grid_centres(expected)))
    difference = np.abs(volume.array.astype(float) - expected.array)
    assert difference.mean() < 1.5 and difference.max() <= 8
    assert volume.geometry.is_close(expected.geometry)


SHIPPED_IMAGES = [
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_expb.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_padded.dcm",
    "JPEG2000.dcm",
    "JPGExtended.dcm",
    "image_dfl.dcm",
    "rtdose.dcm",
    "rtdose_rle.dcm",
    "rtdose_expb.dcm",
    "liver_1frame.dcm",
    "693_J2KI.dcm",
    "examples_palette.dcm",
]


def shipped(name: str) -> str:
    path = get_testdata_file(name, download=False)
    if path is None or not os.path.exists(path):
        pytest.skip(f"{name} is not shipped with this pydicom")
    return path


@pytest.mark.parametrize("name", SHIPPED_IMAGES)
def test_pydicom_shipped_images_load_like_pydicom_decodes_them(name):
    from pydicom.pixels import apply_rescale

    path = shipped(name)
    ds = pydicom.dcmread(path)
    header = read_header(path)
    volume = load_frames(header.frames)
    stored = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1) or 1) == 1:
        stored = stored[None]
    expected = apply_rescale(stored.astype(np.float64), ds) if "RescaleSlope" in ds else stored
    if "PixelPaddingValue" in ds:  # padding becomes the documented value
        expected = np.where(
            stored == ds.PixelPaddingValue, padding_value(header.frames[0]), expected
        )
    assert volume.shape == expected.shape
    if "GridFrameOffsetVector" in ds:  # RT dose frames are stacked along the offsets
        offsets = [float(v) for v in ds.GridFrameOffsetVector]
        order = np.argsort(offsets)
        expected = expected[order]
    np.testing.assert_allclose(volume.array, expected, atol=1e-3)


def test_shipped_rt_dose_spacing_comes_from_frame_offsets():
    volume = load_frames(read_header(shipped("rtdose.dcm")).frames)
    ds = pydicom.dcmread(shipped("rtdose.dcm"))
    steps = np.diff([float(v) for v in ds.GridFrameOffsetVector])
    assert volume.spacing[2] == pytest.approx(abs(float(np.median(steps))))
    assert volume.spacing[:2] == (float(ds.PixelSpacing[1]), float(ds.PixelSpacing[0]))
