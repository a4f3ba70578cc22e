"""The fast structural walk over received objects must never accept what a full decode refuses.

Both receive paths (the listener's `check_request` on a C-STORE request, retrieval's
`read_and_check` on a file getscu wrote) let the walk vouch for an object and decode it with
pydicom only when the walk is unsure; these tests hold both to pydicom's verdicts on whole
objects, on objects cut at every kind of position, and on the layouts a PACS sends (explicit and
implicit VR, nested sequences of defined and undefined length, compressed pixel data).
"""

from __future__ import annotations

import struct
from io import BytesIO

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.events import EVT_C_STORE, Event
from pynetdicom.presentation import build_context

from workstation.dicom.fast_header import header_from_view, parse_head
from workstation.dicom.headers import read_header
from workstation.dicom.net.dcmtk_get import HEAD_BYTES, _read_and_check, read_and_check
from workstation.dicom.net.receive import (
    Rejected,
    check_decoded,
    check_request,
    part10_header,
    view_verdict,
)
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


class _Association:
    """Event only needs something to hang the event on."""


def _store_request(dataset: bytes, sop: str, syntax: str) -> Event:
    """A C-STORE request event carrying `dataset` as a peer sends it (no file meta)."""
    request = C_STORE()
    request.AffectedSOPClassUID = CTImageStorage
    request.AffectedSOPInstanceUID = sop
    request.DataSet = BytesIO(dataset)
    context = build_context(CTImageStorage, syntax)
    context.context_id = 1
    return Event(_Association(), EVT_C_STORE, {"request": request, "context": context.as_tuple})


def _received(encoded: bytes, sop: str) -> tuple[str, str, str]:
    """The listener's verdict on a DICOM file's data set arriving as a C-STORE request."""
    meta = scan_file_meta(encoded)
    assert meta is not None
    event = _store_request(encoded[meta.dataset_offset :], sop, meta.transfer_syntax)
    return check_request(event)[2]


def _retrieved(folder, encoded: bytes, sop: str) -> tuple[str, str, str]:
    """Retrieval's verdict on the same bytes as a file getscu wrote."""
    path = folder / f"CT.{sop}"
    path.write_bytes(encoded)
    return read_and_check(path, sop)[0]


def _verdict(check, *args):
    try:
        return check(*args)
    except Rejected as rejection:
        return ("rejected", rejection.status)


def _message(check, *args) -> str:
    with pytest.raises(Rejected) as rejection:
        check(*args)
    return rejection.value.reason


@pytest.mark.parametrize(("syntax", "undefined", "compressed"), LAYOUTS)
def test_walk_vouches_for_whole_objects_and_finds_their_uids(
    tmp_path, syntax, undefined, compressed
):
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
    full = check_decoded(encoded, sop)
    assert _received(encoded, sop) == full
    assert _retrieved(tmp_path, encoded, sop) == full


@pytest.mark.parametrize(("syntax", "undefined", "compressed"), LAYOUTS)
def test_objects_cut_anywhere_get_the_full_decode_verdict(tmp_path, syntax, undefined, compressed):
    encoded = _object(syntax, undefined_sequences=undefined, compressed=compressed)
    sop = str(dcmread(BytesIO(encoded)).SOPInstanceUID)
    meta = scan_file_meta(encoded)
    assert meta is not None
    header = part10_header(CTImageStorage, sop, syntax)
    dataset = encoded[meta.dataset_offset :]
    accepted_cuts = 0
    for cut in range(140, len(encoded), 5):
        piece = encoded[:cut]
        retrieved = _verdict(_retrieved, tmp_path, piece, sop)
        assert retrieved == _verdict(check_decoded, piece, sop), f"file cut at {cut}"
        accepted_cuts += retrieved[0] != "rejected"
    for cut in range(0, len(dataset), 5):
        received = _verdict(_received, header + dataset[:cut], sop)
        full = _verdict(check_decoded, header + dataset[:cut], sop, CTImageStorage)
        assert received == full, f"request cut at {cut}"
    # a cut inside the pixel data is always refused
    assert _verdict(_retrieved, tmp_path, encoded[:-10], sop)[0] == "rejected"
    assert _verdict(_received, encoded[:-10], sop)[0] == "rejected"
    assert accepted_cuts < len(encoded) // 3


@pytest.mark.parametrize("path", ["listener", "retrieval"])
def test_short_pixel_data_and_missing_uids_are_refused_by_the_walk_too(tmp_path, path):
    def check(encoded: bytes, sop: str):
        return _received(encoded, sop) if path == "listener" else _retrieved(tmp_path, encoded, sop)

    encoded = _object(ExplicitVRLittleEndian, undefined_sequences=True)
    ds = dcmread(BytesIO(encoded))
    sop = str(ds.SOPInstanceUID)
    ds.PixelData = ds.PixelData[:100]
    short = BytesIO()
    ds.save_as(short)
    assert "the header's image size needs 1024" in _message(check, short.getvalue(), sop)
    del ds.SeriesInstanceUID
    ds.PixelData = bytes(1024)
    missing = BytesIO()
    ds.save_as(missing)
    assert "SeriesInstanceUID is missing" in _message(check, missing.getvalue(), sop)
    assert "differs from the C-STORE request" in _message(check, encoded, "1.2.3.4")


def _with_meta_sop(syntax: str, meta_sop: str) -> tuple[bytes, str]:
    """An object whose file meta names another SOP Instance UID than its data set."""
    ds = dcmread(BytesIO(_object(ExplicitVRLittleEndian, undefined_sequences=True)))
    ds.file_meta.TransferSyntaxUID = syntax
    if meta_sop:
        ds.file_meta.MediaStorageSOPInstanceUID = meta_sop
    else:
        del ds.file_meta.MediaStorageSOPInstanceUID
    buffer = BytesIO()
    ds.save_as(buffer)  # as it is: enforce_file_format would set the meta's UID from the data set
    encoded = buffer.getvalue()
    assert dcmread(BytesIO(encoded)).file_meta.get("MediaStorageSOPInstanceUID", "") == meta_sop
    return encoded, str(ds.SOPInstanceUID)


def test_a_file_meta_naming_another_instance_is_refused_whichever_check_runs(tmp_path):
    other = generate_uid()
    walked, sop = _with_meta_sop(ExplicitVRLittleEndian, other)
    # deflated data sets are beyond the walk: pydicom decides (the same file, compressed)
    decoded, decoded_sop = _with_meta_sop(DeflatedExplicitVRLittleEndian, other)
    meta = scan_file_meta(decoded)
    assert meta is not None
    assert scan_dataset(decoded, meta.transfer_syntax, meta.dataset_offset) is None
    expected = "the file meta's SOP Instance UID differs from the data set's"
    assert _message(_retrieved, tmp_path, walked, sop) == expected
    assert _message(_retrieved, tmp_path, decoded, decoded_sop) == expected
    assert _message(check_decoded, decoded, decoded_sop) == expected
    # a file meta that agrees (or names none) is accepted on both paths
    agreeing, sop = _with_meta_sop(DeflatedExplicitVRLittleEndian, "")
    assert _retrieved(tmp_path, agreeing, sop)[2] == sop


def test_file_check_reads_the_head_and_holds_the_rest_to_the_file_size(tmp_path):
    ds = dcmread(BytesIO(_object(ExplicitVRLittleEndian, undefined_sequences=True)))
    ds.Rows = ds.Columns = 256
    ds.NumberOfFrames = "1"
    ds.PixelData = bytes(256 * 256 * 2)  # 128 KiB: past the head that is read
    sop = str(ds.SOPInstanceUID)
    whole = tmp_path / "whole.dcm"
    ds.save_as(whole)
    assert whole.stat().st_size > HEAD_BYTES
    uids, stat, head = read_and_check(whole, sop)
    assert uids == (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), sop)
    assert stat.st_size == whole.stat().st_size and head == whole.read_bytes()[:HEAD_BYTES]
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(whole.read_bytes()[:-1000])
    with pytest.raises(Rejected, match="truncated"):
        read_and_check(cut, sop)
    ds.DataSetTrailingPadding = b"\x00" * 8  # an element after the pixel data: walked whole
    padded = tmp_path / "padded.dcm"
    ds.save_as(padded)
    assert read_and_check(padded, sop)[0][2] == sop
    padded.write_bytes(padded.read_bytes()[:-4])
    with pytest.raises(Rejected):
        read_and_check(padded, sop)


NATIVE_LAYOUTS = [(syntax, undefined) for syntax, undefined, packed in LAYOUTS if not packed]


@pytest.mark.parametrize(("syntax", "undefined"), NATIVE_LAYOUTS)
def test_one_walk_checks_a_retrieved_file_and_builds_its_index_header(tmp_path, syntax, undefined):
    """A retrieved file's check and its index header come from one walk of its first bytes
    (`receive.view_verdict` on `fast_header.parse_head`), pixel data past them held to the size."""
    ds = dcmread(BytesIO(_object(syntax, undefined_sequences=undefined)))
    ds.Rows = ds.Columns = 128
    ds.NumberOfFrames = "1"
    ds.PixelData = bytes(128 * 128 * 2)
    buffer = BytesIO()
    ds.save_as(buffer, implicit_vr=syntax == ImplicitVRLittleEndian, enforce_file_format=True)
    encoded = buffer.getvalue()
    sop = str(ds.SOPInstanceUID)
    head = encoded[:HEAD_BYTES]
    assert len(head) < len(encoded)
    view = parse_head(head, len(encoded))
    assert view is not None
    assert view_verdict(head, view, len(encoded), sop) == check_decoded(encoded, sop)
    path = tmp_path / sop
    path.write_bytes(encoded)
    verdict, stat, _, walked = _read_and_check(path, sop)
    assert verdict == check_decoded(encoded, sop) and walked is not None
    assert header_from_view(str(path), stat, walked) == read_header(path)


@pytest.mark.parametrize(("syntax", "undefined"), NATIVE_LAYOUTS)
def test_one_walk_vouches_only_for_what_the_full_check_accepts(syntax, undefined):
    encoded = _object(syntax, undefined_sequences=undefined)
    sop = str(dcmread(BytesIO(encoded)).SOPInstanceUID)
    vouched = 0
    for cut in range(140, len(encoded) + 1, 3):
        for size in (cut, len(encoded)):  # a cut file; or a file whose head was cut off
            piece = encoded[:cut]
            view = parse_head(piece, size)
            verdict = None if view is None else view_verdict(piece, view, size, sop)
            if verdict is None:
                continue  # the full walk, then pydicom, decide
            vouched += 1
            whole = encoded if size == len(encoded) else piece
            assert verdict == check_decoded(whole, sop), f"cut at {cut}, size {size}"
            assert size == len(encoded)
    assert vouched > 0
    # another instance named, or the file meta naming another: left to the full check's words
    view = parse_head(encoded, len(encoded))
    assert view_verdict(encoded, view, len(encoded), "1.2.3.4") is None
    other, other_sop = _with_meta_sop(syntax, generate_uid())
    view = parse_head(other, len(other))
    assert view is not None and view_verdict(other, view, len(other), other_sop) is None


def test_one_walk_leaves_elements_after_the_pixel_data_and_repeated_tags_to_the_full_walk():
    ds = dcmread(BytesIO(_object(ExplicitVRLittleEndian, undefined_sequences=True)))
    sop = str(ds.SOPInstanceUID)
    ds.DataSetTrailingPadding = b"\x00" * 8
    padded = BytesIO()
    ds.save_as(padded)
    encoded = padded.getvalue()
    view = parse_head(encoded, len(encoded))
    assert view is not None and view_verdict(encoded, view, len(encoded), sop) is None
    assert check_decoded(encoded, sop)[2] == sop  # the full walk takes it
    # PatientName written twice: the header walk keeps one, so it vouches for neither
    del ds.DataSetTrailingPadding
    plain = BytesIO()
    ds.save_as(plain)
    encoded = plain.getvalue()
    name = b"\x10\x00\x10\x00PN\x0a\x00Test^Scan "
    at = encoded.index(name)
    repeated = encoded[: at + len(name)] + name + encoded[at + len(name) :]
    view = parse_head(repeated, len(repeated))
    assert view is not None and view_verdict(repeated, view, len(repeated), sop) is None


def test_a_header_nested_deeper_than_any_walk_goes_is_refused_not_a_crash(tmp_path):
    """3000 sequences inside one another: past the header reader's recursion and the walk's
    depth limit, so pydicom judges it, and the retrieval refuses it with a status and a reason."""
    sop = generate_uid()
    nested = b""
    for _ in range(3000):
        nested += struct.pack("<HH2sHI", 0x0008, 0x1140, b"SQ", 0, 0xFFFFFFFF)
        nested += struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    for _ in range(3000):
        nested += struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    uid = sop.encode() + b"\0" * (len(sop) % 2)
    element = struct.pack("<HH2sH", 0x0008, 0x0018, b"UI", len(uid)) + uid
    encoded = part10_header(CTImageStorage, sop, ExplicitVRLittleEndian) + nested + element
    assert _verdict(_retrieved, tmp_path, encoded, sop)[0] == "rejected"
    assert "cannot be decoded" in _message(_retrieved, tmp_path, encoded, sop)
