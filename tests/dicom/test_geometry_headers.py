"""read_header: what indexing keeps per frame, the native pixel offset, and bad input by file."""

from __future__ import annotations

import os

import numpy as np
import pydicom
import pytest

from workstation.dicom.headers import read_header
from workstation.dicom.records import DicomProblem
from workstation.testing.phantoms import (
    DEFLATED,
    EXPLICIT_BE,
    IMPLICIT_LE,
    RLE,
    write_analytic_series,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_native_pixel_offset_points_at_the_pixel_bytes(tmp_path):
    for syntax in ("1.2.840.10008.1.2.1", IMPLICIT_LE):
        series = write_analytic_series(tmp_path / syntax, transfer_syntax=syntax, shape=(2, 6, 7))
        for path in series.paths:
            frame = read_header(path).frames[0]
            ds = pydicom.dcmread(path)
            with open(path, "rb") as fp:
                fp.seek(frame.pixel_data_offset)
                raw = fp.read(6 * 7 * 2)
            assert raw == ds.PixelData
            assert frame.transfer_syntax_uid == syntax


def test_encoded_pixels_have_no_offset(tmp_path):
    for syntax in (EXPLICIT_BE, DEFLATED, RLE):
        series = write_analytic_series(tmp_path / syntax, transfer_syntax=syntax, shape=(1, 8, 8))
        frame = read_header(series.paths[0]).frames[0]
        assert frame.pixel_data_offset is None
        assert frame.transfer_syntax_uid == syntax


def test_classic_header_fields(tmp_path):
    series = write_analytic_series(tmp_path, shape=(3, 6, 7), spacing=(0.5, 0.75, 2.0))
    header = read_header(series.paths[0])
    frame = header.frames[0]
    assert header.series_uid == series.series_uid == frame.series_uid
    assert header.study_uid == series.study_uid
    assert header.modality == "CT" and header.synthetic
    assert header.size == os.path.getsize(series.paths[0])
    assert (frame.rows, frame.columns) == (6, 7)
    assert frame.pixel_spacing == (0.75, 0.5)  # DICOM order: row spacing, column spacing
    assert frame.orientation == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert frame.rescale_intercept == -1024.0 and frame.units == "HU"
    assert frame.stack_key.startswith("o=1.000,0.000,0.000,0.000,1.000,0.000|s=6x7")


def test_enhanced_multiframe_reads_per_frame_position_and_rescale(tmp_path):
    series = write_analytic_series(
        tmp_path,
        enhanced=True,
        shape=(5, 8, 9),
        per_frame_rescale=lambda k: (1.0 + k, -1000.0 + 10 * k),
    )
    header = read_header(series.paths[0])
    assert len(header.frames) == 5
    assert [f.frame_index for f in header.frames] == list(range(5))
    # Frames are stored shuffled; each keeps its own position and rescale.
    by_slope = {f.rescale_slope: f for f in header.frames}
    assert sorted(by_slope) == [1.0, 2.0, 3.0, 4.0, 5.0]
    for k in range(5):
        frame = by_slope[1.0 + k]
        assert frame.rescale_intercept == -1000.0 + 10 * k
        assert frame.position[2] == pytest.approx(series.origin[2] + k * series.spacing[2])
        assert frame.pixel_spacing == (series.spacing[1], series.spacing[0])
    offsets = sorted(f.pixel_data_offset for f in header.frames)
    assert np.all(np.diff(offsets) == 8 * 9 * 2)
    assert len({f.stack_key for f in header.frames}) == 1


def test_echo_orientation_and_size_split_stack_keys(tmp_path):
    def echo(n):
        return lambda ds, k: setattr(ds, "EchoNumbers", n)

    one = write_analytic_series(tmp_path / "e1", modality="MR", shape=(1, 6, 6), extra=echo(1))
    two = write_analytic_series(tmp_path / "e2", modality="MR", shape=(1, 6, 6), extra=echo(2))
    cor = write_analytic_series(
        tmp_path / "c", modality="MR", shape=(1, 6, 6), orientation="coronal", extra=echo(1)
    )
    big = write_analytic_series(tmp_path / "b", modality="MR", shape=(1, 6, 8), extra=echo(1))
    keys = [read_header(s.paths[0]).frames[0].stack_key for s in (one, two, cor, big)]
    assert len(set(keys)) == 4


def test_image_without_position_is_indexed_with_a_warning(tmp_path):
    def drop(ds, k):
        del ds.ImagePositionPatient
        del ds.ImageOrientationPatient

    series = write_analytic_series(tmp_path, shape=(1, 6, 6), extra=drop)
    header = read_header(series.paths[0])
    assert header.frames[0].position is None
    assert header.frames[0].stack_key.startswith("nogeom")
    assert any("ImagePositionPatient" in w for w in header.warnings)


@pytest.fixture
def good_file(tmp_path):
    return write_analytic_series(tmp_path / "good", shape=(1, 8, 8)).paths[0]


def problem(path) -> DicomProblem:
    with pytest.raises(DicomProblem) as caught:
        read_header(path)
    assert caught.value.path == str(path)
    assert str(path) in str(caught.value)
    return caught.value


def test_not_dicom(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    assert "not a DICOM file" in problem(path).reason


def test_truncated_in_header_and_in_pixels(tmp_path, good_file):
    data = good_file.read_bytes()
    head = tmp_path / "head.dcm"
    head.write_bytes(data[:300])
    assert "truncated" in problem(head).reason or "unreadable" in problem(head).reason
    pixels = tmp_path / "pixels.dcm"
    pixels.write_bytes(data[:-20])
    assert "truncated" in problem(pixels).reason


def test_dicomdir(tmp_path):
    from pydicom.fileset import FileSet

    folder = tmp_path / "set"
    folder.mkdir()
    FileSet().write(folder)
    assert "DICOMDIR" in problem(folder / "DICOMDIR").reason


def test_no_pixel_data(tmp_path, good_file):
    ds = pydicom.dcmread(good_file)
    del ds.PixelData
    path = tmp_path / "nopix.dcm"
    ds.save_as(path)
    assert "no pixel data" in problem(path).reason


def test_missing_file_and_directory(tmp_path):
    assert "not found" in problem(tmp_path / "gone.dcm").reason
    (tmp_path / "folder").mkdir()
    assert "directory" in problem(tmp_path / "folder").reason


def test_pydicom_shipped_files_read_or_report():
    """Every file pydicom ships is either read or refused with a reason naming it."""
    from pydicom.data import get_testdata_file

    folder = os.path.dirname(get_testdata_file("CT_small.dcm", download=False))
    read = 0
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isdir(path):
            continue
        try:
            header = read_header(path)
        except DicomProblem as error:
            assert error.reason and error.path == path
        else:
            read += 1
            assert header.frames
    assert read >= 40
