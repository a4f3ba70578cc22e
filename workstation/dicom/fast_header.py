"""Read a classic DICOM header straight from the file's first bytes, without pydicom.

Why this exists: indexing reads one header per file, and pydicom's general parser (a file object,
a generator, a `Dataset` of `RawDataElement`s, then value conversion) costs several times more
than the few dozen values the index keeps. Almost every file a workstation sees is the common
case: a Part 10 file with a preamble, little-endian (implicit or explicit VR) or an encapsulated
syntax, a plain top-level dataset and no functional groups. For that case this module walks the
element headers with `struct.unpack_from` over one buffer (16 KiB, read again larger when the
header is longer), decodes the values the index needs exactly the way `headers._FastView` decodes
pydicom's raw elements, and hands them to the same `headers._build_header` that builds every
`InstanceHeader`. So both paths share one set of rules; only the byte parsing differs.

Anything the walker is not sure about returns None, and `headers.read_header` reads the file with
pydicom instead: no preamble, big endian, deflate, command sets, a dataset whose encoding differs
from its transfer syntax, unknown or switched VRs, undefined-length values that are not sequences,
malformed sequences, enhanced multi-frame files (functional groups), RT dose grids, DICOMDIRs,
other character sets, values in VRs this module does not decode, a missing SOP UID, a missing
pixel data element, and every file that is truncated or unreadable (pydicom's reading then says
exactly what is wrong). `tests/dicom/test_index_fast_header.py` compares both paths field by
field on files of each kind.

`header_from_head` runs the same walk on bytes a caller has already read (a receive path that
checked the file), so a retrieved file is read and parsed once (`index.index_headers`).
"""

from __future__ import annotations

import os
from struct import Struct, unpack_from
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - types only
    from workstation.dicom.records import InstanceHeader

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
# Encapsulated syntaxes (JPEG family, JPEG 2000, JPEG-LS, MPEG, HTJ2K: 1.2.840.10008.1.2.4.*; RLE)
# encode the dataset as explicit VR little endian, like pydicom assumes for them.
ENCAPSULATED_PREFIX = "1.2.840.10008.1.2.4."
RLE_LOSSLESS = "1.2.840.10008.1.2.5"

FIRST_READ = 16384
UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
PIXEL_TAGS = {0x7FE00010, 0x7FE00009, 0x7FE00008}
# Explicit VRs with a 2-byte length; the others have 2 reserved bytes and a 4-byte length.
SHORT_VRS = set(b"AE AS AT CS DA DS DT FL FD IS LO LT PN SH SL SS ST TM UI UL US".split())
LONG_VRS = set(b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())
_IMPLICIT_HEADER = Struct("<HHI").unpack_from  # group, element, 4-byte length
_EXPLICIT_HEADER = Struct("<HH2sH").unpack_from  # group, element, VR, 2-byte length
_LONG_LENGTH = Struct("<I").unpack_from

# Top-level elements `headers._build_header` reads: keyword -> (tag, dictionary VR).
WANTED: dict[str, tuple[int, str]] = {
    "SpecificCharacterSet": (0x00080005, "CS"),
    "ImageType": (0x00080008, "CS"),
    "SOPClassUID": (0x00080016, "UI"),
    "SOPInstanceUID": (0x00080018, "UI"),
    "StudyDate": (0x00080020, "DA"),
    "StudyTime": (0x00080030, "TM"),
    "AccessionNumber": (0x00080050, "SH"),
    "Modality": (0x00080060, "CS"),
    "StudyDescription": (0x00081030, "LO"),
    "SeriesDescription": (0x0008103E, "LO"),
    "PatientName": (0x00100010, "PN"),
    "PatientID": (0x00100020, "LO"),
    "PatientBirthDate": (0x00100030, "DA"),
    "PatientSex": (0x00100040, "CS"),
    "SliceThickness": (0x00180050, "DS"),
    "EchoNumbers": (0x00180086, "IS"),
    "StudyInstanceUID": (0x0020000D, "UI"),
    "SeriesInstanceUID": (0x0020000E, "UI"),
    "SeriesNumber": (0x00200011, "IS"),
    "InstanceNumber": (0x00200013, "IS"),
    "ImagePositionPatient": (0x00200032, "DS"),
    "ImageOrientationPatient": (0x00200037, "DS"),
    "TemporalPositionIdentifier": (0x00200100, "IS"),
    "SamplesPerPixel": (0x00280002, "US"),
    "PhotometricInterpretation": (0x00280004, "CS"),
    "PlanarConfiguration": (0x00280006, "US"),
    "NumberOfFrames": (0x00280008, "IS"),
    "Rows": (0x00280010, "US"),
    "Columns": (0x00280011, "US"),
    "PixelSpacing": (0x00280030, "DS"),
    "BitsAllocated": (0x00280100, "US"),
    "BitsStored": (0x00280101, "US"),
    "PixelRepresentation": (0x00280103, "US"),
    "PixelPaddingValue": (0x00280120, "US or SS"),
    "WindowCenter": (0x00281050, "DS"),
    "WindowWidth": (0x00281051, "DS"),
    "RescaleIntercept": (0x00281052, "DS"),
    "RescaleSlope": (0x00281053, "DS"),
    "RescaleType": (0x00281054, "LO"),
}
# Present at the top level: the file needs what only pydicom's reading gives (sequences parsed
# into datasets, or a DICOMDIR's own error), so the walker hands it over.
HAND_OVER_KEYWORDS = {
    "DirectoryRecordSequence": 0x00041220,  # a DICOMDIR
    "SharedFunctionalGroupsSequence": 0x52009229,  # enhanced multi-frame
    "PerFrameFunctionalGroupsSequence": 0x52009230,
    "GridFrameOffsetVector": 0x3004000C,  # RT dose frames placed along the normal
}
HAND_OVER_TAGS = set(HAND_OVER_KEYWORDS.values())
CHARSET_ENCODINGS = {b"": "latin-1", b"ISO_IR 6": "latin-1", b"ISO_IR 100": "latin-1"}
CHARSET_ENCODINGS[b"ISO_IR 192"] = "utf-8"

# The same decoding rules as headers._FastView (see there).
_STRING_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "PN", "SH", "TM", "UI"}
_BINARY = {"US": ("H", 2), "SS": ("h", 2), "UL": ("I", 4), "SL": ("i", 4)}
_EMPTY_IS_NONE = {"DS", "IS", "US", "SS", "UL", "SL", "US or SS"}  # pydicom's empty value


class _HandOver(Exception):
    """The walker is not sure: pydicom reads this file."""


class _NeedMore(Exception):
    """The header goes on past the bytes read so far."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class ClassicHeader:
    """What the walker found: decoded values plus the pixel data element's position.

    `elements` (tag -> (VR or None when implicit, value start, value length) of every top-level
    element before the pixel data, in file order), `meta` (file meta tag -> raw value) and
    `dataset_offset` (where the data set starts) let a receive path check the same bytes without
    walking them again (`net.scan.verify_view`)."""

    __slots__ = (
        "dataset_offset",
        "elements",
        "meta",
        "offset",
        "pixel_length",
        "pixel_tag",
        "present",
        "transfer_syntax",
        "values",
    )

    def __init__(
        self,
        values: dict[str, Any],
        present: set[int] | dict[int, Any],
        transfer_syntax: str,
        pixel_tag: int,
        pixel_length: int,
        offset: int,
        elements: dict[int, tuple[bytes | None, int, int]] | None = None,
        meta: dict[int, bytes] | None = None,
        dataset_offset: int = 0,
    ) -> None:
        self.values = values
        self.present = present
        self.transfer_syntax = transfer_syntax
        self.pixel_tag = pixel_tag
        self.pixel_length = pixel_length
        self.offset = offset
        self.elements = elements if elements is not None else {}
        self.meta = meta if meta is not None else {}
        self.dataset_offset = dataset_offset

    # The two methods headers._build_header calls on a dataset view.
    def get(self, keyword: str, default: Any = None) -> Any:
        if keyword not in WANTED and keyword not in HAND_OVER_KEYWORDS:
            raise LookupError(f"fast_header does not read {keyword}: add it to WANTED")
        return self.values.get(keyword, default)

    def __contains__(self, keyword: str) -> bool:
        if keyword in HAND_OVER_KEYWORDS:
            return False  # their presence sends the file to pydicom
        return WANTED[keyword][0] in self.present


def scan_classic(path: str) -> tuple[os.stat_result, ClassicHeader] | None:
    """The file's stat and its classic header, or None when pydicom should read it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        stat = os.fstat(fd)
        size = stat.st_size
        buffer = os.read(fd, min(size, FIRST_READ))
        while True:
            try:
                return stat, _walk(buffer, size)
            except _NeedMore as more:
                if len(buffer) >= size:
                    return None
                wanted = min(size, max(more.size, 2 * len(buffer)))
                more_bytes = os.pread(fd, wanted - len(buffer), len(buffer))
                if not more_bytes:  # the file shrank while being read
                    return None
                buffer += more_bytes
            except _HandOver:
                return None
    except OSError:
        return None
    finally:
        os.close(fd)


# --- the walk -----------------------------------------------------------------------------------
def _need(buffer: bytes, end: int) -> None:
    if end > len(buffer):
        raise _NeedMore(end)


def _looks_explicit(buffer: bytes, pos: int) -> bool:
    """pydicom's test of a dataset's first element: two capital letters where a VR would be."""
    return 0x40 < buffer[pos + 4] < 0x5B and 0x40 < buffer[pos + 5] < 0x5B


def _walk(buffer: bytes, size: int) -> ClassicHeader:
    if len(buffer) < 132 or buffer[128:132] != b"DICM":
        raise _HandOver("no preamble")
    meta, pos = _file_meta(buffer, 132)
    syntax_raw = meta.get(0x00020010)
    if syntax_raw is None:
        raise _HandOver("no transfer syntax")
    syntax = syntax_raw.rstrip(b"\x00 ").decode("ascii", "replace")
    if syntax == IMPLICIT_VR_LITTLE_ENDIAN:
        implicit = True
    elif syntax in (EXPLICIT_VR_LITTLE_ENDIAN, RLE_LOSSLESS) or syntax.startswith(
        ENCAPSULATED_PREFIX
    ):
        implicit = False
    else:
        raise _HandOver("big endian, deflated or unknown transfer syntax")
    _need(buffer, pos + 8)
    if unpack_from("<H", buffer, pos)[0] == 0:
        raise _HandOver("command set elements")
    if _looks_explicit(buffer, pos) == implicit:
        raise _HandOver("dataset encoded otherwise than its transfer syntax says")

    dataset_offset = pos
    elements, tag, pos = _top_level(buffer, pos, implicit)
    if elements.keys() & HAND_OVER_TAGS:
        raise _HandOver("needs parsed sequences")
    pixel_length, offset = _pixel_element(buffer, pos, implicit, size)
    values = _decode_wanted(buffer, elements, implicit)
    for keyword in ("SOPClassUID", "SOPInstanceUID"):  # else the file meta's copy is used
        if not values.get(keyword):
            raise _HandOver(f"no {keyword}")
    # the elements dict answers `tag in present` as the set of its keys would
    return ClassicHeader(
        values, elements, syntax, tag, pixel_length, offset, elements, meta, dataset_offset
    )


def _top_level(
    buffer: bytes, pos: int, implicit: bool
) -> tuple[dict[int, tuple[bytes | None, int, int]], int, int]:
    """Every top-level element before the pixel data: tag -> (VR, value start, length); the
    pixel data's tag and position. The hot loop of indexing, so `_element_header` is inlined."""
    elements: dict[int, tuple[bytes | None, int, int]] = {}
    available = len(buffer)
    while True:
        if pos + 12 > available:
            _need(buffer, pos + 12)  # elements are at least 8 bytes; pixel data needs 12
        if implicit:
            group, element, length = _IMPLICIT_HEADER(buffer, pos)
            vr = None
            start = pos + 8
        else:
            group, element, vr, length = _EXPLICIT_HEADER(buffer, pos)
            start = pos + 8
            if vr not in SHORT_VRS:
                if vr not in LONG_VRS:
                    break  # pixel data (checked below), a delimiter, or an unknown VR
                length = _LONG_LENGTH(buffer, pos + 8)[0]
                start = pos + 12
        tag = group << 16 | element
        if tag in PIXEL_TAGS or group == 0xFFFE:
            break
        if length == UNDEFINED:
            pos = _skip_undefined(buffer, tag, vr, start, implicit)
        else:
            pos = start + length
        elements[tag] = (vr, start, length)
    tag = group << 16 | element
    if tag not in PIXEL_TAGS:
        if group == 0xFFFE:
            raise _HandOver("delimiter at the top level")
        raise _HandOver("unknown VR or a switch to implicit VR")
    return elements, tag, pos


def _file_meta(buffer: bytes, pos: int) -> tuple[dict[int, bytes], int]:
    """Group 0002 (always explicit VR little endian): tag -> raw value, and where it ends."""
    meta: dict[int, bytes] = {}
    while True:
        _need(buffer, pos + 8)
        group, element = unpack_from("<HH", buffer, pos)
        if group != 2:
            return meta, pos
        _, length, start = _element_header(buffer, pos, implicit=False)
        if length == UNDEFINED:
            raise _HandOver("undefined length in the file meta")
        _need(buffer, start + length)
        meta[0x00020000 | element] = buffer[start : start + length]
        pos = start + length


def _element_header(buffer: bytes, pos: int, implicit: bool) -> tuple[bytes | None, int, int]:
    """(VR or None when implicit, value length, value start) of the element at `pos`."""
    if implicit:
        return None, unpack_from("<I", buffer, pos + 4)[0], pos + 8
    vr = buffer[pos + 4 : pos + 6]
    if vr in SHORT_VRS:
        return vr, unpack_from("<H", buffer, pos + 6)[0], pos + 8
    if vr in LONG_VRS:
        _need(buffer, pos + 12)
        return vr, unpack_from("<I", buffer, pos + 8)[0], pos + 12
    raise _HandOver("unknown VR or a switch to implicit VR")


def _skip_undefined(buffer: bytes, tag: int, vr: bytes | None, start: int, implicit: bool) -> int:
    """Past an undefined-length element: only sequences are walked, as pydicom parses them."""
    if implicit:
        if not _implicit_is_sequence(buffer, tag, start):
            raise _HandOver("undefined-length value that is not a sequence")
    elif vr != b"SQ":  # UN of undefined length is read as implicit VR: pydicom does that
        raise _HandOver("undefined-length value that is not a sequence")
    return _skip_items(buffer, start, implicit)


def _implicit_is_sequence(buffer: bytes, tag: int, start: int) -> bool:
    """pydicom's rule: the dictionary's VR, or for unknown tags, whether an item follows."""
    from pydicom.datadict import _dictionary_vr_fast

    try:
        return _dictionary_vr_fast(tag) == "SQ"
    except KeyError:
        _need(buffer, start + 4)
        return unpack_from("<I", buffer, start)[0] == 0xE000FFFE  # (FFFE,E000) little endian


def _skip_items(buffer: bytes, pos: int, implicit: bool) -> int:
    """Past the items of an undefined-length sequence and its delimiter."""
    while True:
        _need(buffer, pos + 8)
        group, element, length = unpack_from("<HHI", buffer, pos)
        tag = group << 16 | element
        pos += 8
        if tag == SEQUENCE_END:
            return pos
        if tag != ITEM:
            raise _HandOver("sequence content that is not an item")
        _need(buffer, pos + 6)
        # pydicom: an item may be implicit VR inside an explicit VR dataset, never the reverse.
        item_implicit = implicit or not _looks_explicit(buffer, pos)
        if length == UNDEFINED:
            pos = _skip_item(buffer, pos, None, item_implicit)
        else:
            end = pos + length
            if _skip_item(buffer, pos, end, item_implicit) != end:
                raise _HandOver("item elements overrun the item")
            pos = end


def _skip_item(buffer: bytes, pos: int, end: int | None, implicit: bool) -> int:
    """Past one item's elements: to `end`, or past its item delimiter when `end` is None."""
    while end is None or pos < end:
        _need(buffer, pos + 8)
        group, element = unpack_from("<HH", buffer, pos)
        tag = group << 16 | element
        if tag == ITEM_END:
            if end is not None:
                raise _HandOver("item delimiter inside a defined-length item")
            return pos + 8
        if group == 0xFFFE:
            raise _HandOver("stray delimiter inside an item")
        vr, length, start = _element_header(buffer, pos, implicit)
        if length == UNDEFINED:
            pos = _skip_undefined(buffer, tag, vr, start, implicit)
        else:
            pos = start + length
    return pos


def _pixel_element(buffer: bytes, at: int, implicit: bool, size: int) -> tuple[int, int]:
    """(value length, value offset) of the pixel data element, as headers' pydicom path finds."""
    if implicit:
        length, offset = unpack_from("<I", buffer, at + 4)[0], at + 8
    else:
        if at + 12 > size:
            raise _HandOver("file ends inside the pixel data element")
        _need(buffer, at + 12)
        vr = buffer[at + 4 : at + 6]
        if not (vr.isalpha() and vr.isupper()):
            length, offset = unpack_from("<I", buffer, at + 4)[0], at + 8
        elif vr in (b"OB", b"OW", b"OF", b"OD", b"OL", b"UN", b"OV"):
            length, offset = unpack_from("<I", buffer, at + 8)[0], at + 12
        else:
            length, offset = unpack_from("<H", buffer, at + 6)[0], at + 8
    if length != UNDEFINED and offset + length > size:
        raise _HandOver("pixel data cut short: pydicom's path words the problem")
    return length, offset


# --- values -------------------------------------------------------------------------------------
def _decode_wanted(
    buffer: bytes, elements: dict[int, tuple[bytes | None, int, int]], implicit: bool
) -> dict[str, Any]:
    """The values `headers._FastView.get` would return for the wanted elements that are present."""
    charset = elements.get(0x00080005)
    encoding = "latin-1"
    if charset is not None:
        vr, start, length = charset
        if length == UNDEFINED or (vr is not None and vr != b"CS"):
            raise _HandOver("odd Specific Character Set")
        _need(buffer, start + length)
        raw = buffer[start : start + length].rstrip(b" ")
        if raw not in CHARSET_ENCODINGS:
            raise _HandOver("character set other than ASCII, Latin-1 or UTF-8")
        encoding = CHARSET_ENCODINGS[raw]
    values: dict[str, Any] = {}
    available = len(buffer)
    copy = type(buffer) is not bytes  # a memoryview's slices are not hashable
    decoded = _DECODED
    for keyword, tag, dictionary_vr in _WANTED_ITEMS:
        found = elements.get(tag)
        if found is None:
            continue
        file_vr, start, length = found
        if length == UNDEFINED:
            raise _HandOver(f"{keyword} of undefined length")
        if length == 0 or (file_vr is None and dictionary_vr == "US or SS"):
            values[keyword] = _decode_element(
                buffer, found, dictionary_vr, encoding, implicit, values
            )
            continue
        end = start + length
        if end > available:
            raise _NeedMore(end)
        raw = bytes(buffer[start:end]) if copy else buffer[start:end]
        key = (file_vr or dictionary_vr, raw, encoding)
        value = decoded.get(key, _NOT_DECODED)
        if value is _NOT_DECODED:
            value = _decode(dictionary_vr if file_vr is None else file_vr.decode(), raw, encoding)
            if len(decoded) >= _DECODED_LIMIT:
                decoded.clear()
            decoded[key] = value
        # a list is the caller's to keep: never the remembered one itself
        values[keyword] = list(value) if type(value) is list else value
    return values


def _decode_element(
    buffer: bytes,
    found: tuple[bytes | None, int, int],
    dictionary_vr: str,
    encoding: str,
    implicit: bool,
    values: dict[str, Any],
) -> Any:
    """One element's value, decoded afresh: empty values, and implicit PixelPaddingValue (whose
    VR follows PixelRepresentation, read before it)."""
    file_vr, start, length = found
    vr = dictionary_vr if file_vr is None else file_vr.decode()
    if vr == "US or SS":
        vr = _padding_vr(values)
    if length == 0:
        return _empty_value(vr, implicit)
    _need(buffer, start + length)
    return _decode(vr, bytes(buffer[start : start + length]), encoding)


_WANTED_ITEMS = tuple((keyword, tag, vr) for keyword, (tag, vr) in WANTED.items())

# Decoded values by (VR as in the file, else the dictionary's; raw bytes; encoding): most of a
# series' header values (patient, study, series, size, spacing, orientation, window) repeat from
# file to file, and a dictionary look-up costs a tenth of decoding and splitting the text again.
# Bounded: cleared when full.
_DECODED: dict[tuple[bytes | str, bytes, str], Any] = {}
_DECODED_LIMIT = 4096
_NOT_DECODED = object()


def _padding_vr(values: dict[str, Any]) -> str:
    """PixelPaddingValue in implicit VR: US or SS by PixelRepresentation (read before it)."""
    representation = values.get("PixelRepresentation")
    if not isinstance(representation, int):
        raise _HandOver("PixelPaddingValue without PixelRepresentation")
    return "US" if representation == 0 else "SS"


def _empty_value(vr: str, implicit: bool) -> Any:
    """What a zero-length element reads as: "" for text, None for numbers (pydicom's rule)."""
    if vr in _EMPTY_IS_NONE:
        return None
    if vr in _STRING_VRS:
        return ""
    raise _HandOver(f"empty value of VR {vr}")


def _decode(vr: str, raw: bytes, encoding: str) -> Any:
    if vr in _STRING_VRS:
        text = raw.decode(encoding, errors="replace")
        parts = [part.strip(" \x00") for part in text.split("\\")]
        if parts == [""]:
            return ""
        return parts[0] if len(parts) == 1 else parts
    binary = _BINARY.get(vr)
    if binary is not None and len(raw) % binary[1] == 0:
        count = len(raw) // binary[1]
        numbers = unpack_from(f"<{count}{binary[0]}", raw)
        return numbers[0] if count == 1 else list(numbers)
    raise _HandOver(f"value of VR {vr}")


# --- headers from bytes already read ------------------------------------------------------------
def parse_head(buffer: bytes, size: int) -> ClassicHeader | None:
    """The classic header in `buffer`, the first bytes of a `size`-byte file; None when pydicom
    should read the file, or when the header runs past `buffer` (read the file instead).

    For callers that have already read a file's head (a receive check): the walk is the one
    `scan_classic` runs, on the same bytes, so the outcome is the same as reading the file."""
    try:
        return _walk(buffer, size)
    except (_NeedMore, _HandOver):
        return None


def header_from_head(path: str, stat: os.stat_result, buffer: bytes) -> InstanceHeader | None:
    """`headers.read_header(path)` from the file's first bytes and its stat, without reading the
    file again; None when the walk is unsure (then `read_header` reads the file).

    Raises `DicomProblem` exactly as `read_header` does for a classic file with a bad value."""
    view = parse_head(buffer, stat.st_size)
    if view is None:
        return None
    return header_from_view(path, stat, view)


def header_from_view(path: str, stat: os.stat_result, view: ClassicHeader) -> InstanceHeader:
    """`header_from_head` for a view `parse_head` already returned (a receive path that checked
    the file from the same walk). Raises `DicomProblem` as `read_header` would."""
    from workstation.dicom.headers import _build_header  # headers imports this module
    from workstation.dicom.records import DicomProblem

    try:
        return _build_header(
            path,
            stat,
            view,  # type: ignore[arg-type]
            None,
            view.transfer_syntax,
            view.pixel_tag,
            view.pixel_length,
            view.offset,
        )
    except DicomProblem:
        raise
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as error:
        raise DicomProblem(
            path, f"malformed header value ({type(error).__name__}: {error})"
        ) from error
