"""A fast structural walk over a received DICOM data set: is it whole, and what are its UIDs?

Every object that arrives is checked before it goes into the store (complete, pixel data as
large as the header says, UIDs present). Decoding it with pydicom costs ~0.6 ms per 0.5 MB CT
image, a large share of a receive path that must keep up with compiled peers. This walk reads
only element headers (values are skipped by length, so pixel data is never copied), visits
nested sequences and items to their ends, and collects the handful of values the checks need.

It is an accelerator, never the judge of a bad object: whenever the walk finds anything it is
not sure about (a length running past the end, big endian or deflated data, an unbalanced
item) it returns None and the caller decodes the object with pydicom, whose verdict and
message stand. So an object is accepted here only when the walk saw every element end inside
the data, which is what a full decode checks. `receive.walk_verdict` is where both receive
paths (listener and retrieval) turn the walk's findings into a verdict, with the same checks
`receive.check_decoded` runs after a full decode.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass

from pydicom.uid import UID

# Explicit VRs with a 2-byte reserved field and a 4-byte length (PS3.5 7.1.2)
_LONG_VRS = frozenset(
    (b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV")
)
# Explicit VRs with a 2-byte length; any other VR code makes the walk unsure
_SHORT_VRS = frozenset(b"AE AS AT CS DA DS DT FD FL IS LO LT PN SH SL SS ST TM UI UL US".split())
_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQUENCE_END = 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_MAX_DEPTH = 16

_STUDY_UID = 0x0020000D
_SERIES_UID = 0x0020000E
_SOP_UID = 0x00080018
_SAMPLES = 0x00280002
_FRAMES = 0x00280008
_ROWS = 0x00280010
_COLUMNS = 0x00280011
_BITS = 0x00280100
_PIXEL_DATA = 0x7FE00010
_TEXT_TAGS = frozenset((_STUDY_UID, _SERIES_UID, _SOP_UID, _FRAMES))
_SHORT_TAGS = frozenset((_SAMPLES, _ROWS, _COLUMNS, _BITS))

_TAG = struct.Struct("<HH")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_VR_AND_SHORT_LENGTH = struct.Struct("<2sH")


class _Unsure(Exception):
    """The walk met something it does not vouch for; pydicom decides instead."""


@dataclass(frozen=True)
class DatasetFacts:
    """What the receive checks need from one object's top-level data set."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    rows: int
    columns: int
    bits_allocated: int
    samples_per_pixel: int
    frames: int
    pixel_data_length: int | None  # None: no pixel data; -1: encapsulated (compressed)


@dataclass(frozen=True)
class FileMeta:
    """The file meta group of a DICOM file, and where its data set starts."""

    transfer_syntax: str
    sop_instance_uid: str
    dataset_offset: int


def scan_dataset(
    buffer, transfer_syntax: str, offset: int = 0, size: int | None = None
) -> DatasetFacts | None:
    """Walk a data set (bytes, memoryview or mmap) from `offset` to its end; None when unsure.

    `size`: the whole object's length when `buffer` holds only its beginning (a file's first
    bytes): values past the buffer are skipped by length and checked against `size`; any
    element header or wanted value past the buffer makes the walk unsure."""
    syntax, walkable, implicit = _syntax_traits(transfer_syntax)
    if not walkable:
        return None
    total = len(buffer) if size is None else size
    values: dict[int, object] = {}
    try:
        end = _walk(buffer, offset, total, implicit, 0, values)
    except (_Unsure, struct.error, UnicodeDecodeError, ValueError):
        return None
    if end != total:
        return None
    return _facts(values, syntax, values.get(_PIXEL_DATA))  # type: ignore[arg-type]


def _facts(values: dict[int, object], syntax: str, pixel_length: int | None) -> DatasetFacts:
    """The facts a walk of a data set found, from its values by tag."""
    return DatasetFacts(
        study_uid=str(values.get(_STUDY_UID, "")),
        series_uid=str(values.get(_SERIES_UID, "")),
        sop_instance_uid=str(values.get(_SOP_UID, "")),
        transfer_syntax=syntax,
        rows=int(values.get(_ROWS, 0)),
        columns=int(values.get(_COLUMNS, 0)),
        bits_allocated=int(values.get(_BITS, 0)),
        samples_per_pixel=int(values.get(_SAMPLES, 1) or 1),
        frames=_frames(values.get(_FRAMES)),
        pixel_data_length=pixel_length,
    )


def scan_file_meta(buffer) -> FileMeta | None:
    """Read the preamble, "DICM" and the file meta group of a DICOM file; None when unsure."""
    if len(buffer) < 132 or bytes(buffer[128:132]) != b"DICM":
        return None
    position, values = 132, {}
    try:
        while position + 8 <= len(buffer):
            group, element = _TAG.unpack_from(buffer, position)
            if group != 0x0002:
                break
            vr = bytes(buffer[position + 4 : position + 6])
            if vr in _LONG_VRS:
                length = _U32.unpack_from(buffer, position + 8)[0]
                start = position + 12
            else:
                length = _U16.unpack_from(buffer, position + 6)[0]
                start = position + 8
            if length == _UNDEFINED or start + length > len(buffer):
                return None
            if element in (0x0003, 0x0010):
                values[element] = _text(buffer, start, length)
            position = start + length
    except (struct.error, UnicodeDecodeError):
        return None
    if 0x0010 not in values:
        return None
    return FileMeta(values[0x0010], values.get(0x0003, ""), position)


# The transfer syntaxes `verify_view` vouches for (native little endian) -> implicit VR
_NATIVE_SYNTAXES = {"1.2.840.10008.1.2": True, "1.2.840.10008.1.2.1": False}
_NATIVE_PIXEL_VRS = (b"OB", b"OW")
_META_TRANSFER_SYNTAX = 0x00020010
_META_SOP_UID = 0x00020003


def verify_view(buffer, view, size: int) -> tuple[DatasetFacts, str] | None:
    """What `scan_file_meta` and `scan_dataset` would find in a file, from the header the index
    reader walked in the same first bytes (`fast_header.parse_head`'s view): (the data set's
    facts, the file meta's SOP Instance UID or ""), or None when this cannot vouch for the file;
    then the walk above decides.

    One walk instead of two for a retrieved file: the header walk has read every top-level
    element header before the pixel data with this module's rules (known VRs, lengths inside
    the bytes, no delimiter at the top level). What it leaves is done here, as `_walk` does it:
    the elements must follow one another (a tag met twice, which the header walk keeps once,
    sends the file to the full walk), every sequence is walked to its end, the values the checks
    read are decoded the same way, and the pixel data must be native, defined in length, the last
    element and end exactly at the file's end. Native little endian syntaxes only."""
    try:
        syntax = _meta_text(view.meta[_META_TRANSFER_SYNTAX])
        implicit = _NATIVE_SYNTAXES.get(syntax)
        if implicit is None or syntax != view.transfer_syntax:
            return None
        raw_sop = view.meta.get(_META_SOP_UID)
        meta_sop = "" if raw_sop is None else _meta_text(raw_sop)
        elements = view.elements
        position = view.dataset_offset
        for tag, (vr, start, length) in elements.items():
            if start - (12 if vr in _LONG_VRS else 8) != position:
                return None
            if length == _UNDEFINED:
                nested_implicit = implicit or vr == b"UN"
                position = _skip_items(buffer, start, size, nested_implicit, 1, True)
                continue
            position = start + length
            if vr == b"SQ" or (implicit and length and _looks_like_item(buffer, start, tag)):
                _skip_items(buffer, start, position, implicit, 1)
        offset, pixel_length = view.offset, view.pixel_length
        if view.pixel_tag != _PIXEL_DATA or pixel_length == _UNDEFINED:
            return None
        if not implicit and bytes(buffer[offset - 8 : offset - 6]) not in _NATIVE_PIXEL_VRS:
            return None
        if offset - (8 if implicit else 12) != position or offset + pixel_length != size:
            return None
        values: dict[int, object] = {}
        for tag in _TEXT_TAGS:
            found = elements.get(tag)
            if found is not None:
                values[tag] = _text(buffer, found[1], found[2])
        for tag in _SHORT_TAGS:
            found = elements.get(tag)
            if found is not None:
                if found[2] != 2:
                    return None
                values[tag] = _U16.unpack_from(buffer, found[1])[0]
        facts = _facts(values, syntax, pixel_length)
    except (_Unsure, struct.error, UnicodeDecodeError, ValueError, IndexError, KeyError):
        return None
    return facts, meta_sop


def _meta_text(raw: bytes) -> str:
    """A file meta value as `scan_file_meta` reads it."""
    return bytes(raw).decode("ascii").strip("\x00 ")


@functools.lru_cache(maxsize=64)
def _syntax_traits(transfer_syntax: str) -> tuple[str, bool, bool]:
    """(the UID as text, whether the walk reads it, implicit VR): pydicom's UID properties,
    remembered, since building and validating a UID cost as much as the walk itself."""
    syntax = UID(transfer_syntax)
    walkable = syntax.is_little_endian and not syntax.is_deflated
    return str(syntax), walkable, syntax.is_implicit_VR


def _frames(value: object) -> int:
    try:
        return int(str(value).strip() or 1) if value is not None else 1
    except ValueError:
        raise _Unsure() from None


def _text(buffer, start: int, length: int) -> str:
    if start + length > len(buffer):
        raise _Unsure()  # past what was read of the object
    return bytes(buffer[start : start + length]).decode("ascii").strip("\x00 ")


def _walk(
    buffer, position: int, end: int, implicit: bool, depth: int, values, delimited: bool = False
) -> int:
    """Walk elements up to `end`, or (`delimited`, an item of undefined length) up to its item
    delimiter; returns the position after the last one.

    `values` collects the wanted top-level values (depth 0 only)."""
    if depth > _MAX_DEPTH:
        raise _Unsure()
    while position < end:
        if position + 8 > end:
            raise _Unsure()
        group, element = _TAG.unpack_from(buffer, position)
        tag = group << 16 | element
        if tag == _ITEM_END:
            if not delimited or _U32.unpack_from(buffer, position + 4)[0] != 0:
                raise _Unsure()
            return position + 8
        if group == 0xFFFE:
            raise _Unsure()  # an item or sequence end where an element belongs
        if implicit:
            vr = b""
            length = _U32.unpack_from(buffer, position + 4)[0]
            start = position + 8
        else:
            vr, length = _VR_AND_SHORT_LENGTH.unpack_from(buffer, position + 4)
            if vr in _LONG_VRS:
                if position + 12 > end:
                    raise _Unsure()
                length = _U32.unpack_from(buffer, position + 8)[0]
                start = position + 12
            elif vr in _SHORT_VRS:
                start = position + 8
            else:
                raise _Unsure()
        if length == _UNDEFINED:
            if tag == _PIXEL_DATA and depth == 0:
                values[tag] = -1
                position = _skip_fragments(buffer, start, end)
            else:
                # a sequence; an explicit UN of undefined length holds implicit VR items
                nested_implicit = implicit or vr == b"UN"
                position = _skip_items(buffer, start, end, nested_implicit, depth + 1, True)
            continue
        if start + length > end:
            raise _Unsure()
        if depth == 0:
            if tag in _TEXT_TAGS:
                values[tag] = _text(buffer, start, length)
            elif tag in _SHORT_TAGS:
                if length != 2:
                    raise _Unsure()
                values[tag] = _U16.unpack_from(buffer, start)[0]
            elif tag == _PIXEL_DATA:
                values[tag] = length
        if vr == b"SQ" or (implicit and length and _looks_like_item(buffer, start, tag)):
            _skip_items(buffer, start, start + length, implicit, depth + 1)
        position = start + length
    if delimited:
        raise _Unsure()  # the item's delimiter never came
    return position


def _looks_like_item(buffer, start: int, tag: int) -> bool:
    """In implicit VR a defined-length sequence is known only by its first item tag."""
    if tag == _PIXEL_DATA:
        return False
    if start + 4 > len(buffer):
        raise _Unsure()  # past what was read of the object
    group, element = _TAG.unpack_from(buffer, start)
    return (group << 16 | element) == _ITEM


def _skip_items(
    buffer, position: int, end: int, implicit: bool, depth: int, delimited: bool = False
) -> int:
    """Walk a sequence's items up to `end` (defined length) or, `delimited` (undefined length),
    up to the sequence delimiter."""
    while position < end:
        if position + 8 > end:
            raise _Unsure()
        group, element = _TAG.unpack_from(buffer, position)
        tag = group << 16 | element
        length = _U32.unpack_from(buffer, position + 4)[0]
        if tag == _SEQUENCE_END:
            if not delimited or length != 0:
                raise _Unsure()
            return position + 8
        if tag != _ITEM:
            raise _Unsure()
        start = position + 8
        if length == _UNDEFINED:
            position = _walk(buffer, start, end, implicit, depth, {}, delimited=True)
            continue
        if start + length > end:
            raise _Unsure()
        if _walk(buffer, start, start + length, implicit, depth, {}) != start + length:
            raise _Unsure()
        position = start + length
    if delimited or position != end:
        raise _Unsure()
    return position


def _skip_fragments(buffer, position: int, end: int) -> int:
    """Encapsulated pixel data: items of defined length up to the sequence delimiter."""
    while position + 8 <= end:
        group, element = _TAG.unpack_from(buffer, position)
        tag = group << 16 | element
        length = _U32.unpack_from(buffer, position + 4)[0]
        if tag == _SEQUENCE_END:
            return position + 8
        if tag != _ITEM or length == _UNDEFINED or position + 8 + length > end:
            raise _Unsure()
        position += 8 + length
    raise _Unsure()
