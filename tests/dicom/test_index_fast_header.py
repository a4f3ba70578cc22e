"""The fast classic-header reader gives exactly what pydicom's reading gives, on every kind of file.

`read_header` walks the bytes of common files itself (workstation.dicom.fast_header) and hands
everything else to pydicom (`read_header_pydicom`). Each file below is read both ways and the
InstanceHeaders (every field, every FrameRecord field) must be equal; for each kind the test also
checks which path was taken, so a change that silently sends everything to pydicom (or keeps a
file it should hand over) fails here.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import struct
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)

from workstation.dicom import index as index_module
from workstation.dicom.fast_header import scan_classic
from workstation.dicom.headers import read_header, read_header_pydicom
from workstation.dicom.index import index_paths
from workstation.dicom.records import DicomProblem

CT = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"


def ct_dataset(syntax: str, rows: int = 6, columns: int = 5, signed: bool = True) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT
    ds.file_meta.TransferSyntaxUID = syntax
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyDate = "20240102"
    ds.StudyTime = "101112.5"
    ds.AccessionNumber = ""  # empty: read as "" on both paths
    ds.Modality = "CT"
    ds.StudyDescription = "Thorax"
    ds.SeriesDescription = "Axial 1.0 SYNTHETIC"
    ds.PatientName = "Müller^Jürgen"
    ds.PatientID = "PAT-7"
    ds.PatientBirthDate = ""
    ds.PatientSex = "M"
    ds.SliceThickness = "1.25"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = "3"
    ds.InstanceNumber = "12"
    ds.ImagePositionPatient = ["-120.5", "-99.75", "31.0"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "0.9998", "-0.0175"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, columns
    ds.PixelSpacing = ["0.7", "0.8"]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 1 if signed else 0
    ds.PixelPaddingValue = -2000 if signed else 0
    ds.WindowCenter = ["40", "400"]
    ds.WindowWidth = ["400", "1500"]
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.PixelData = np.arange(rows * columns, dtype="<i2").tobytes()
    return ds


def with_sequences(ds: Dataset, undefined: bool) -> Dataset:
    """Nested sequences (public and private) before the pixel data, of either length kind."""
    inner = Dataset()
    inner.CodeValue = "T-D0050"
    inner.CodingSchemeDesignator = "SRT"
    inner.CodeMeaning = "Tissue"
    outer = Dataset()
    outer.ReferencedSOPClassUID = CT
    outer.ReferencedSOPInstanceUID = generate_uid()
    outer.PurposeOfReferenceCodeSequence = Sequence([inner, inner])
    empty = Dataset()
    ds.ReferencedImageSequence = Sequence([outer, empty, outer])
    ds.AnatomicRegionSequence = Sequence([])
    ds.add_new(0x00090010, "LO", "ACME 1.1")
    ds.add_new(0x00091001, "SQ", Sequence([inner]))
    for element in (ds["ReferencedImageSequence"], ds[0x00091001], ds["AnatomicRegionSequence"]):
        element.value.is_undefined_length = undefined
        for item in element.value:
            item.is_undefined_length_sequence_item = undefined
    outer["PurposeOfReferenceCodeSequence"].value.is_undefined_length = undefined
    return ds


def save(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def insert_after_meta(path: Path, element: bytes) -> Path:
    """Put raw element bytes at the start of the dataset (just after the file meta group)."""
    data = path.read_bytes()
    (meta_length,) = struct.unpack_from("<I", data, 132 + 8)
    start = 132 + 12 + meta_length
    path.write_bytes(data[:start] + element + data[start:])
    return path


def enhanced_ct(path: Path) -> Path:
    ds = ct_dataset(ExplicitVRLittleEndian)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = ENHANCED_CT
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
        delattr(ds, keyword)
    ds.NumberOfFrames = 3
    frames = []
    for k in range(3):
        frame = Dataset()
        position = Dataset()
        position.ImagePositionPatient = [0, 0, 2.5 * k]
        frame.PlanePositionSequence = Sequence([position])
        frames.append(frame)
    shared = Dataset()
    orientation = Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    measures = Dataset()
    measures.PixelSpacing = [0.5, 0.5]
    measures.SliceThickness = 2.5
    shared.PlaneOrientationSequence = Sequence([orientation])
    shared.PixelMeasuresSequence = Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    ds.PixelData = np.zeros((3, 6, 5), dtype="<i2").tobytes()
    return save(ds, path)


def encapsulated(path: Path) -> Path:
    ds = ct_dataset(RLELossless)
    ds.PixelData = encapsulate([b"\x00" * 64])
    ds["PixelData"].VR = "OB"
    return save(ds, path)


def big_header(path: Path) -> Path:
    """A 40 kB private value before the pixel data: longer than the first read."""
    ds = ct_dataset(ExplicitVRLittleEndian)
    ds.add_new(0x00290010, "LO", "ACME BLOB")
    ds.add_new(0x00291010, "OB", bytes(range(256)) * 160)
    return save(ds, path)


def no_preamble(path: Path) -> Path:
    save(ct_dataset(ExplicitVRLittleEndian), path)
    path.write_bytes(path.read_bytes()[128 + 4 :])  # group 0002 first, no 'DICM'
    return path


def other_charset(path: Path) -> Path:
    ds = ct_dataset(ExplicitVRLittleEndian)
    ds.SpecificCharacterSet = "ISO_IR 144"
    ds.PatientName = "Иванов^Иван"
    return save(ds, path)


def utf8(path: Path) -> Path:
    ds = ct_dataset(ImplicitVRLittleEndian)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "山田^太郎"
    return save(ds, path)


def odd_length(path: Path, implicit: bool) -> Path:
    save(ct_dataset(ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian), path)
    tag = struct.pack("<HH", 0x0009, 0x0010)
    header = struct.pack("<I", 5) if implicit else b"LO" + struct.pack("<H", 5)
    return insert_after_meta(path, tag + header + b"ACME1")


def truncated_header(path: Path) -> Path:
    save(with_sequences(ct_dataset(ExplicitVRLittleEndian), undefined=True), path)
    path.write_bytes(path.read_bytes()[:700])
    return path


# name -> (writer, read by the fast path?)
KINDS = {
    "implicit VR, signed with padding": (
        lambda p: save(ct_dataset(ImplicitVRLittleEndian), p),
        True,
    ),
    "implicit VR, unsigned with padding": (
        lambda p: save(ct_dataset(ImplicitVRLittleEndian, signed=False), p),
        True,
    ),
    "explicit VR little endian": (lambda p: save(ct_dataset(ExplicitVRLittleEndian), p), True),
    "implicit VR, undefined-length sequences": (
        lambda p: save(with_sequences(ct_dataset(ImplicitVRLittleEndian), True), p),
        True,
    ),
    "implicit VR, defined-length sequences": (
        lambda p: save(with_sequences(ct_dataset(ImplicitVRLittleEndian), False), p),
        True,
    ),
    "explicit VR, undefined-length sequences": (
        lambda p: save(with_sequences(ct_dataset(ExplicitVRLittleEndian), True), p),
        True,
    ),
    "explicit VR, defined-length sequences": (
        lambda p: save(with_sequences(ct_dataset(ExplicitVRLittleEndian), False), p),
        True,
    ),
    "odd length, implicit VR": (lambda p: odd_length(p, implicit=True), True),
    "odd length, explicit VR": (lambda p: odd_length(p, implicit=False), True),
    "encapsulated (RLE)": (encapsulated, True),
    "header longer than the first read": (big_header, True),
    "UTF-8 names": (utf8, True),
    "big endian": (lambda p: save(ct_dataset(ExplicitVRBigEndian), p), False),
    "deflated": (lambda p: save(ct_dataset(DeflatedExplicitVRLittleEndian), p), False),
    "enhanced multi-frame": (enhanced_ct, False),
    "no preamble": (no_preamble, False),
    "Cyrillic character set": (other_charset, False),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_fast_header_equals_pydicom_reading_field_by_field(tmp_path, kind):
    writer, fast = KINDS[kind]
    path = str(writer(tmp_path / "image.dcm"))
    assert (scan_classic(path) is not None) == fast

    ours, reference = read_header(path), read_header_pydicom(path)
    for field in dataclasses.fields(ours):
        if field.name != "frames":
            assert getattr(ours, field.name) == getattr(reference, field.name), field.name
    assert len(ours.frames) == len(reference.frames) >= 1
    for frame, expected in zip(ours.frames, reference.frames):
        for field in dataclasses.fields(frame):
            assert getattr(frame, field.name) == getattr(expected, field.name), field.name
    assert ours == reference


def test_fast_path_reads_the_values_the_file_holds(tmp_path):
    """Not just equal to pydicom's reading: right (a check that both paths could not share)."""
    path = save(with_sequences(ct_dataset(ImplicitVRLittleEndian), True), tmp_path / "a.dcm")
    header = read_header(path)
    frame = header.frames[0]
    assert header.patient_name == "Müller^Jürgen"
    assert header.image_type == ("ORIGINAL", "PRIMARY", "AXIAL")
    assert header.series_number == 3 and header.accession_number == ""
    assert frame.position == (-120.5, -99.75, 31.0)
    assert frame.orientation == (1.0, 0.0, 0.0, 0.0, 0.9998, -0.0175)
    assert frame.pixel_spacing == (0.7, 0.8)
    assert frame.pixel_padding_value == -2000
    assert (frame.window_center, frame.window_width) == (40.0, 400.0)
    assert frame.rescale_intercept == -1024.0 and frame.units == "HU"
    data = Path(path).read_bytes()
    assert data[frame.pixel_data_offset :] == np.arange(30, dtype="<i2").tobytes()


def test_a_truncated_header_gives_the_same_problem_both_ways(tmp_path):
    path = truncated_header(tmp_path / "cut.dcm")
    assert scan_classic(str(path)) is None
    with pytest.raises(DicomProblem) as fast:
        read_header(path)
    with pytest.raises(DicomProblem) as reference:
        read_header_pydicom(path)
    assert fast.value.reason == reference.value.reason
    assert "truncated" in fast.value.reason and str(path) in str(fast.value)


def test_process_pool_and_in_process_parsing_store_the_same_rows(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    for number, (writer, _) in enumerate(KINDS.values()):
        writer(data / f"f{number:02d}.dcm")
    truncated_header(data / "cut.dcm")

    def frames_and_problems(store: Path) -> tuple[list, list]:
        conn = sqlite3.connect(store / "workstation.sqlite")
        try:
            frames = conn.execute("SELECT * FROM dicom_frames ORDER BY 1, 2").fetchall()
            problems = conn.execute(
                "SELECT path, kind, reason FROM dicom_problems ORDER BY 1, 2, 3"
            ).fetchall()
            return frames, problems
        finally:
            conn.close()

    serial = index_paths(tmp_path / "serial", [data])
    monkeypatch.setattr(index_module, "PARALLEL_THRESHOLD", 2)
    pooled = index_paths(tmp_path / "pooled", [data])
    assert serial.as_dict() == pooled.as_dict()
    assert serial.instances_added == len(KINDS)
    assert frames_and_problems(tmp_path / "serial") == frames_and_problems(tmp_path / "pooled")
