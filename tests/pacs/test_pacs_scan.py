"""The fast structural walk over received objects must never accept what a full decode refuses.

`check_encoded` lets the walk vouch for an object and decodes it with pydicom only when the
walk is unsure; these tests hold the two to the same verdicts on whole objects, on objects cut
at every kind of position, and on the layouts a PACS sends (explicit and implicit VR, nested
sequences of defined and undefined length, compressed pixel data).
"""

from __future__ import annotations

from io import BytesIO

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)

from workstation.dicom.net.receive import Rejected, check_decoded, check_encoded
from workstation.dicom.net.scan import scan_dataset, scan_file_meta

# pydicom warns about every cut-off UID and missing delimiter it meets; the verdicts are compared
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _object(syntax: str, *, undefined_sequences: bool, compressed: bool = False) -> bytes:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "Test^Scan"
    inner = Dataset()
    inner.ReferencedSOPInstanceUID = generate_uid()
    inner.ReferencedSOPClassUID = CTImageStorage
    code = Dataset()
    code.CodeValue = "T-D3000"
    code.CodingSchemeDesignator = "SRT"
    inner.PurposeOfReferenceCodeSequence = Sequence([code])
    ds.ReferencedImageSequence = Sequence([inner, inner])
    ds.Rows = ds.Columns = 16
    ds.SamplesPerPixel = 1
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.NumberOfFrames = "2"
    pixels = bytes(range(256)) * 4  # 2 frames of 16 x 16 x 2 bytes
    if compressed:
        ds.PixelData = encapsulate([pixels[:512], pixels[512:]])
        ds["PixelData"].VR = "OB"
    else:
        ds.PixelData = pixels
    for element in ds.iterall():
        if element.VR == "SQ":
            element.is_undefined_length = undefined_sequences
    buffer = BytesIO()
    ds.save_as(buffer, implicit_vr=syntax == ImplicitVRLittleEndian, enforce_file_format=True)
    return buffer.getvalue()


LAYOUTS = [
    (ExplicitVRLittleEndian, True, False),
    (ExplicitVRLittleEndian, False, False),
    (ImplicitVRLittleEndian, True, False),
    (ImplicitVRLittleEndian, False, False),
    (RLELossless, True, True),
]


def _verdict(check, encoded: bytes, sop: str):
    try:
        return check(encoded, sop)
    except Rejected as rejection:
        return ("rejected", rejection.status)


@pytest.mark.parametrize(("syntax", "undefined", "compressed"), LAYOUTS)
def test_walk_vouches_for_whole_objects_and_finds_their_uids(syntax, undefined, compressed):
    encoded = _object(syntax, undefined_sequences=undefined, compressed=compressed)
    ds = dcmread(BytesIO(encoded))
    meta = scan_file_meta(encoded)
    assert meta is not None and meta.transfer_syntax == syntax
    facts = scan_dataset(encoded, meta.transfer_syntax, meta.dataset_offset)
    assert facts is not None, "the walk should take whole objects without pydicom"
    assert (facts.study_uid, facts.series_uid, facts.sop_instance_uid) == (
        ds.StudyInstanceUID,
        ds.SeriesInstanceUID,
        ds.SOPInstanceUID,
    )
    assert (facts.rows, facts.columns, facts.frames, facts.bits_allocated) == (16, 16, 2, 16)
    assert facts.pixel_data_length == (-1 if compressed else 1024)
    sop = str(ds.SOPInstanceUID)
    assert check_encoded(encoded, sop) == check_decoded(encoded, sop)


@pytest.mark.parametrize(("syntax", "undefined", "compressed"), LAYOUTS)
def test_objects_cut_anywhere_get_the_full_decode_verdict(syntax, undefined, compressed):
    encoded = _object(syntax, undefined_sequences=undefined, compressed=compressed)
    sop = str(dcmread(BytesIO(encoded)).SOPInstanceUID)
    accepted_cuts = 0
    for cut in range(140, len(encoded), 5):
        piece = encoded[:cut]
        fast = _verdict(check_encoded, piece, sop)
        full = _verdict(check_decoded, piece, sop)
        assert fast == full, f"cut at {cut} of {len(encoded)}"
        accepted_cuts += fast[0] != "rejected"
    # a cut inside the pixel data is always refused
    assert _verdict(check_encoded, encoded[:-10], sop)[0] == "rejected"
    assert accepted_cuts < len(encoded) // 3


def test_short_pixel_data_and_missing_uids_are_refused_by_the_walk_too():
    encoded = _object(ExplicitVRLittleEndian, undefined_sequences=True)
    ds = dcmread(BytesIO(encoded))
    sop = str(ds.SOPInstanceUID)
    ds.PixelData = ds.PixelData[:100]
    short = BytesIO()
    ds.save_as(short)
    with pytest.raises(Rejected, match="the header's image size needs 1024"):
        check_encoded(short.getvalue(), sop)
    del ds.SeriesInstanceUID
    ds.PixelData = bytes(1024)
    missing = BytesIO()
    ds.save_as(missing)
    with pytest.raises(Rejected, match="SeriesInstanceUID is missing"):
        check_encoded(missing.getvalue(), sop)
    with pytest.raises(Rejected, match="differs from the C-STORE request"):
        check_encoded(encoded, "1.2.3.4")


def test_file_check_reads_the_head_and_holds_the_rest_to_the_file_size(tmp_path):
    from workstation.dicom.net.dcmtk_get import HEAD_BYTES, check_file

    ds = dcmread(BytesIO(_object(ExplicitVRLittleEndian, undefined_sequences=True)))
    ds.Rows = ds.Columns = 256
    ds.NumberOfFrames = "1"
    ds.PixelData = bytes(256 * 256 * 2)  # 128 KiB: past the head that is read
    sop = str(ds.SOPInstanceUID)
    whole = tmp_path / "whole.dcm"
    ds.save_as(whole)
    assert whole.stat().st_size > HEAD_BYTES
    assert check_file(whole, sop) == (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), sop)
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(whole.read_bytes()[:-1000])
    with pytest.raises(Rejected, match="truncated"):
        check_file(cut, sop)
    ds.DataSetTrailingPadding = b"\x00" * 8  # an element after the pixel data: walked whole
    padded = tmp_path / "padded.dcm"
    ds.save_as(padded)
    assert check_file(padded, sop)[2] == sop
    padded.write_bytes(padded.read_bytes()[:-4])
    with pytest.raises(Rejected):
        check_file(padded, sop)
