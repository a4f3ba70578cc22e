"""Read one DICOM file's header (never its pixels): an `InstanceHeader` with one record per frame.

Indexing calls `read_header` once per file; everything the loader needs later (geometry, rescale,
pixel layout and the byte offset of native pixel data) is in the returned `FrameRecord`s, so a
series loads without parsing headers again.

Rules, so users know what is indexed and what is reported:

- Not DICOM, truncated, a DICOMDIR, no pixel data, pixel data shorter than its header says, or a
  header the parser cannot read: `DicomProblem` naming the file and the reason.
- An image with no ImagePositionPatient / ImageOrientationPatient is still indexed (a screen
  capture or scanned document is still worth viewing) but its frames carry no position and the
  header gets a warning: such frames are shown as 2-D images, never placed in patient space or
  stacked with positioned frames (their `stack_key` says ``nogeom``).
- Enhanced multi-frame files: position, orientation, pixel spacing, rescale and window come per
  frame from PerFrameFunctionalGroupsSequence, falling back to SharedFunctionalGroupsSequence and
  then to the top level. RT Dose style files place frames with GridFrameOffsetVector.
- `pixel_data_offset` is set only for native little-endian pixel data with whole-byte samples
  (8/16/32 bits): the loader reads those bytes straight from the file. Everything else
  (encapsulated, big endian, deflated, 1-bit, float) is decoded by pydicom at load time.

Two readers share the rules above (`_build_header`): `fast_header` walks the bytes of the common
classic file itself, and pydicom reads everything else (see fast_header's docstring for which
files). pydicom is imported only when a file needs it, so index workers that meet only classic
files never pay its import.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from workstation.dicom.fast_header import scan_classic
from workstation.dicom.records import DicomProblem, FrameRecord, InstanceHeader

if TYPE_CHECKING:  # pragma: no cover - types only; pydicom is imported when a file needs it
    from pydicom.dataset import Dataset

# Transfer syntaxes whose pixel bytes lie in the file exactly as the array needs them.
NATIVE_LITTLE_ENDIAN = {
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
}
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
PIXEL_DATA_TAG = 0x7FE00010
FLOAT_PIXEL_DATA_TAGS = {0x7FE00008, 0x7FE00009}
ORIENTATION_DECIMALS = 3  # stack split tolerance: ~0.06 degrees


def read_header(path: str | os.PathLike[str]) -> InstanceHeader:
    """Parse `path`'s header (pixels are not read); raise `DicomProblem` for anything unusable."""
    name = os.fspath(path)
    classic = scan_classic(name)
    if classic is None:
        return read_header_pydicom(name)
    stat, view = classic
    try:
        return _build_header(
            name,
            stat,
            view,
            None,
            view.transfer_syntax,
            view.pixel_tag,
            view.pixel_length,
            view.offset,
        )  # type: ignore[arg-type]
    except DicomProblem:
        raise
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as error:
        raise DicomProblem(
            name, f"malformed header value ({type(error).__name__}: {error})"
        ) from error


def read_header_pydicom(path: str | os.PathLike[str]) -> InstanceHeader:
    """`read_header` for any file, through pydicom's parser (the reference for the fast path)."""
    name = os.fspath(path)
    try:
        stat = os.stat(name)
        with open(name, "rb") as fp:
            ds, pixel_tag, pixel_length, value_offset = _read_until_pixels(name, fp, stat.st_size)
    except DicomProblem:
        raise
    except PermissionError as error:
        raise DicomProblem(name, "cannot read the file: permission denied") from error
    except FileNotFoundError as error:
        raise DicomProblem(name, "file not found") from error
    except IsADirectoryError as error:
        raise DicomProblem(name, "is a directory, not a file") from error
    except OSError as error:
        raise DicomProblem(name, f"cannot read the file: {error.strerror or error}") from error
    except (EOFError, struct.error) as error:
        raise DicomProblem(name, "truncated: the file ends inside its header") from error
    except Exception as error:  # the parser's own errors on a damaged header
        raise DicomProblem(
            name, f"unreadable DICOM header ({type(error).__name__}: {error})"
        ) from error
    try:
        meta = getattr(ds, "file_meta", None)
        syntax = _transfer_syntax(ds)
        view = _FastView(ds)
        return _build_header(name, stat, view, meta, syntax, pixel_tag, pixel_length, value_offset)  # type: ignore[arg-type]
    except DicomProblem:
        raise
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as error:
        raise DicomProblem(
            name, f"malformed header value ({type(error).__name__}: {error})"
        ) from error


# --- parsing ------------------------------------------------------------------------------------
def _read_until_pixels(
    name: str, fp: Any, size: int
) -> tuple[Dataset, int | None, int | None, int | None]:
    """The dataset before the pixel data, plus the pixel data's tag, length and value offset."""
    head = fp.read(132)
    fp.seek(0)
    has_preamble = len(head) == 132 and head[128:132] == b"DICM"
    if not has_preamble and not _looks_like_raw_dataset(head):
        raise DicomProblem(name, "not a DICOM file (no 'DICM' marker and no DICOM data elements)")
    import pydicom  # here, so that rejecting a file that is not DICOM costs no import
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(fp, stop_before_pixels=True, force=not has_preamble)
    except InvalidDicomError as error:
        raise DicomProblem(name, f"not a DICOM file ({error})") from error
    syntax = _transfer_syntax(ds)
    if syntax == "1.2.840.10008.1.2.1.99":  # deflated: positions refer to the inflated stream
        full = pydicom.dcmread(name, force=not has_preamble)
        for tag in (PIXEL_DATA_TAG, *FLOAT_PIXEL_DATA_TAGS):
            if tag in full:
                return ds, tag, None, None
        return ds, None, None, None
    at = fp.tell()
    element = fp.read(12)
    if len(element) < 8:
        _check_not_cut_short(name, ds, size)
        return ds, None, None, None
    little = syntax != "1.2.840.10008.1.2.2"
    group, elem = struct.unpack("<HH" if little else ">HH", element[:4])
    tag = (group << 16) | elem
    if tag != PIXEL_DATA_TAG and tag not in FLOAT_PIXEL_DATA_TAGS:
        return ds, None, None, None
    implicit = syntax == IMPLICIT_VR_LITTLE_ENDIAN
    if implicit:
        (length,) = struct.unpack("<I", element[4:8])
        value_offset = at + 8
    else:
        if len(element) < 12:
            raise DicomProblem(name, "truncated: the file ends inside the pixel data element")
        vr = element[4:6]
        if not (vr.isalpha() and vr.isupper()):  # written implicit despite the transfer syntax
            (length,) = struct.unpack("<I" if little else ">I", element[4:8])
            value_offset = at + 8
        elif vr in (b"OB", b"OW", b"OF", b"OD", b"OL", b"UN", b"OV"):
            (length,) = struct.unpack("<I" if little else ">I", element[8:12])
            value_offset = at + 12
        else:
            (length,) = struct.unpack("<H" if little else ">H", element[6:8])
            value_offset = at + 8
    if length != 0xFFFFFFFF and value_offset + length > size:
        raise DicomProblem(
            name,
            f"truncated: pixel data should be {length} bytes but the file ends "
            f"{size - value_offset} bytes after its start",
        )
    return ds, tag, length, value_offset


def _check_not_cut_short(name: str, ds: Dataset, size: int) -> None:
    """A file that ends without pixel data: truncated, unless its last element ends the file.

    pydicom stops quietly at a cut-off element, which would otherwise read as "no pixel data".
    """
    tags = list(ds.keys())
    if not tags:
        raise DicomProblem(name, "truncated: the file ends right after its meta information")
    last = ds.get_item(tags[-1])
    tell, length = getattr(last, "value_tell", None), getattr(last, "length", None)
    if tell is None or length is None or length == 0xFFFFFFFF:
        return
    if tell + length != size:
        raise DicomProblem(name, f"truncated: the file ends inside its header ({size} bytes)")


def _looks_like_raw_dataset(head: bytes) -> bool:
    """A DICOM dataset written without preamble starts with a group 0002 or 0008 element."""
    return len(head) >= 8 and head[:2] in (b"\x02\x00", b"\x08\x00", b"\x00\x08", b"\x00\x02")


def _transfer_syntax(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    uid = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if uid:
        return str(uid)
    # No meta header: pydicom worked out the encoding while reading.
    if ds.is_little_endian is False:
        return "1.2.840.10008.1.2.2"
    return IMPLICIT_VR_LITTLE_ENDIAN if ds.is_implicit_VR else "1.2.840.10008.1.2.1"


# --- building the header -----------------------------------------------------------------------
def _build_header(
    name: str,
    stat: os.stat_result,
    ds: Dataset,
    meta: Any,
    syntax: str,
    pixel_tag: int | None,
    pixel_length: int | None,
    value_offset: int | None,
) -> InstanceHeader:
    """The header from a dataset view (`_FastView` or fast_header's `ClassicHeader`): both answer
    `get(keyword, default)` and `keyword in view` with the same values."""
    sop_class = str(ds.get("SOPClassUID", "") or getattr(meta, "MediaStorageSOPClassUID", "") or "")
    if sop_class == DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in ds:
        raise DicomProblem(
            name, "a DICOMDIR (the directory of a DICOM file set, not an image): index its folder"
        )
    sop_uid = str(ds.get("SOPInstanceUID", "") or getattr(meta, "MediaStorageSOPInstanceUID", ""))
    if not sop_uid:
        raise DicomProblem(name, "no SOP Instance UID")
    if pixel_tag is None:
        kind = _sop_class_name(sop_class)
        raise DicomProblem(name, f"no pixel data ({kind}): not an image")
    for keyword in ("SeriesInstanceUID", "StudyInstanceUID", "Rows", "Columns", "BitsAllocated"):
        if ds.get(keyword) in (None, ""):
            raise DicomProblem(name, f"missing {keyword}, needed to show the image")
    warnings: list[str] = []
    frames = _frame_records(
        name, ds, sop_class, sop_uid, syntax, pixel_tag, pixel_length, value_offset, warnings
    )
    return InstanceHeader(
        path=name,
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        sop_instance_uid=sop_uid,
        sop_class_uid=sop_class,
        transfer_syntax_uid=syntax,
        patient_id=_text(ds, "PatientID"),
        patient_name=_text(ds, "PatientName"),
        patient_birth_date=_text(ds, "PatientBirthDate"),
        patient_sex=_text(ds, "PatientSex"),
        study_uid=_text(ds, "StudyInstanceUID"),
        study_date=_text(ds, "StudyDate"),
        study_time=_text(ds, "StudyTime"),
        study_description=_text(ds, "StudyDescription"),
        accession_number=_text(ds, "AccessionNumber"),
        series_uid=_text(ds, "SeriesInstanceUID"),
        series_number=_int_or_none(ds.get("SeriesNumber")),
        series_description=_text(ds, "SeriesDescription"),
        modality=_text(ds, "Modality"),
        image_type=tuple(str(v) for v in _as_list(ds.get("ImageType"))),
        frames=tuple(frames),
        warnings=tuple(warnings),
    )


def _frame_records(
    name: str,
    ds: Dataset,
    sop_class: str,
    sop_uid: str,
    syntax: str,
    pixel_tag: int,
    pixel_length: int | None,
    value_offset: int | None,
    warnings: list[str],
) -> list[FrameRecord]:
    rows, columns = int(ds.get("Rows")), int(ds.get("Columns"))
    bits_allocated = int(ds.get("BitsAllocated"))
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    n_frames = _int_or_none(ds.get("NumberOfFrames")) or 1
    if rows <= 0 or columns <= 0:
        raise DicomProblem(name, f"empty image: {rows} rows x {columns} columns")
    frame_bytes = rows * columns * samples * bits_allocated // 8
    photometric = _text(ds, "PhotometricInterpretation") or "MONOCHROME2"
    native = (
        syntax in NATIVE_LITTLE_ENDIAN
        and not photometric.endswith("_422")  # subsampled: pydicom expands it
        and pixel_tag == PIXEL_DATA_TAG
        and bits_allocated in (8, 16, 32)
        and value_offset is not None
        and pixel_length is not None
        and pixel_length != 0xFFFFFFFF
    )
    if native and pixel_length < frame_bytes * n_frames:
        raise DicomProblem(
            name,
            f"pixel data holds {pixel_length} bytes but {n_frames} frame(s) of {rows}x{columns}x"
            f"{samples} at {bits_allocated} bits need {frame_bytes * n_frames}",
        )

    shared = _first_item(ds, "SharedFunctionalGroupsSequence")
    per_frame = list(ds.get("PerFrameFunctionalGroupsSequence") or [])
    if per_frame and len(per_frame) < n_frames:
        raise DicomProblem(
            name,
            f"PerFrameFunctionalGroupsSequence has {len(per_frame)} items for {n_frames} frames",
        )
    if len(per_frame) > n_frames:
        warnings.append(
            f"PerFrameFunctionalGroupsSequence has {len(per_frame)} items for {n_frames} "
            "frame(s); the first ones are used"
        )
    grid_offsets = [float(v) for v in _as_list(ds.get("GridFrameOffsetVector"))]
    if grid_offsets and len(grid_offsets) < n_frames:
        raise DicomProblem(
            name, f"GridFrameOffsetVector has {len(grid_offsets)} values for {n_frames} frames"
        )
    if len(grid_offsets) > n_frames:
        warnings.append(
            f"GridFrameOffsetVector has {len(grid_offsets)} values for {n_frames} frame(s); "
            "the first ones are used"
        )
    modality = _text(ds, "Modality")
    padding = _int_or_none(ds.get("PixelPaddingValue"))
    echo = _text(ds, "EchoNumbers")
    temporal = _text(ds, "TemporalPositionIdentifier")
    instance_number = _int_or_none(ds.get("InstanceNumber"))
    base_units = _units(ds, modality)

    records: list[FrameRecord] = []
    missing_geometry = False
    for index in range(n_frames):
        groups = [per_frame[index]] if per_frame else []
        if shared is not None:
            groups.append(shared)
        position = _vector(_from_groups(groups, "PlanePositionSequence", "ImagePositionPatient"), 3)
        orientation = _vector(
            _from_groups(groups, "PlaneOrientationSequence", "ImageOrientationPatient"), 6
        )
        if position is None and not per_frame:
            position = _vector(ds.get("ImagePositionPatient"), 3)
        if orientation is None:
            orientation = _vector(ds.get("ImageOrientationPatient"), 6)
        if position is None and per_frame and "ImagePositionPatient" in ds and n_frames == 1:
            position = _vector(ds.get("ImagePositionPatient"), 3)
        if position is not None and orientation is not None and grid_offsets and not per_frame:
            position = _offset_along_normal(position, orientation, grid_offsets[index])
        spacing = _vector(_from_groups(groups, "PixelMeasuresSequence", "PixelSpacing"), 2)
        if spacing is None:
            spacing = _vector(ds.get("PixelSpacing"), 2)
        thickness = _float_or_none(_from_groups(groups, "PixelMeasuresSequence", "SliceThickness"))
        if thickness is None:
            thickness = _float_or_none(ds.get("SliceThickness"))
        slope = _float_or_none(
            _from_groups(groups, "PixelValueTransformationSequence", "RescaleSlope")
        )
        intercept = _float_or_none(
            _from_groups(groups, "PixelValueTransformationSequence", "RescaleIntercept")
        )
        if slope is None:
            slope = _float_or_none(ds.get("RescaleSlope"))
        if intercept is None:
            intercept = _float_or_none(ds.get("RescaleIntercept"))
        center = _first_float(_from_groups(groups, "FrameVOILUTSequence", "WindowCenter"))
        width = _first_float(_from_groups(groups, "FrameVOILUTSequence", "WindowWidth"))
        if center is None:
            center = _first_float(ds.get("WindowCenter"))
        if width is None:
            width = _first_float(ds.get("WindowWidth"))
        frame_temporal = _text_or_none(
            _from_groups(groups, "FrameContentSequence", "TemporalPositionIndex")
        )
        stack_id = _text_or_none(_from_groups(groups, "FrameContentSequence", "StackID"))
        frame_echo = _text_or_none(_from_groups(groups, "MREchoSequence", "EffectiveEchoTime"))
        if position is None or orientation is None:
            missing_geometry = True
            position = orientation = None
        key = _stack_key(
            orientation,
            rows,
            columns,
            echo=frame_echo if frame_echo is not None else echo,
            temporal=frame_temporal if frame_temporal is not None else temporal,
            stack_id=stack_id,
        )
        records.append(
            FrameRecord(
                path=name,
                frame_index=index,
                sop_instance_uid=sop_uid,
                sop_class_uid=sop_class,
                series_uid=_text(ds, "SeriesInstanceUID"),
                study_uid=_text(ds, "StudyInstanceUID"),
                rows=rows,
                columns=columns,
                bits_allocated=bits_allocated,
                bits_stored=int(ds.get("BitsStored", bits_allocated) or bits_allocated),
                pixel_representation=int(ds.get("PixelRepresentation", 0) or 0),
                samples_per_pixel=samples,
                photometric=photometric,
                planar_configuration=int(ds.get("PlanarConfiguration", 0) or 0),
                transfer_syntax_uid=syntax,
                number_of_frames=n_frames,
                pixel_data_offset=(value_offset + index * frame_bytes) if native else None,
                position=position,
                orientation=orientation,
                pixel_spacing=spacing,
                slice_thickness=thickness,
                rescale_slope=1.0 if slope is None else slope,
                rescale_intercept=0.0 if intercept is None else intercept,
                pixel_padding_value=padding,
                window_center=center,
                window_width=width,
                instance_number=instance_number,
                modality=modality,
                stack_key=key,
                units=base_units,
            )
        )
    if missing_geometry:
        warnings.append(
            "no ImagePositionPatient/ImageOrientationPatient: shown as a 2-D image, "
            "not placed in patient space"
        )
    if native and pixel_length > frame_bytes * n_frames + 1:
        warnings.append(
            f"pixel data is {pixel_length} bytes, more than the "
            f"{frame_bytes * n_frames} its {n_frames} frame(s) need; the extra bytes are ignored"
        )
    return records


@functools.lru_cache(maxsize=256)
def _stack_key(
    orientation: Sequence[float] | None,
    rows: int,
    columns: int,
    echo: str | None,
    temporal: str | None,
    stack_id: str | None,
) -> str:
    """What splits one series into stacks: orientation, size, echo, temporal position, stack id.

    AcquisitionNumber is deliberately left out: step-and-shoot CT gives every slice its own.
    Remembered (the arguments are hashable: a tuple or None, ints, text or None): every frame
    of a stack gives the same ones, and formatting six floats cost a tenth of a header's build.
    """
    if orientation is None:
        parts = ["nogeom"]
    else:
        rounded = [round(v, ORIENTATION_DECIMALS) + 0.0 for v in orientation]  # +0.0 drops -0.0
        parts = ["o=" + ",".join(f"{v:.{ORIENTATION_DECIMALS}f}" for v in rounded)]
    parts.append(f"s={rows}x{columns}")
    if echo:
        parts.append(f"e={echo}")
    if temporal:
        parts.append(f"t={temporal}")
    if stack_id:
        parts.append(f"id={stack_id}")
    return "|".join(parts)


def _offset_along_normal(
    position: tuple[float, float, float], orientation: Sequence[float], offset: float
) -> tuple[float, float, float]:
    row, col = orientation[:3], orientation[3:]
    normal = (
        row[1] * col[2] - row[2] * col[1],
        row[2] * col[0] - row[0] * col[2],
        row[0] * col[1] - row[1] * col[0],
    )
    return tuple(p + offset * n for p, n in zip(position, normal))  # type: ignore[return-value]


# --- small value helpers ------------------------------------------------------------------------
_FAST_STRING_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "PN", "SH", "TM", "UI"}
_TEXT_VRS = {"LO", "PN", "SH"}  # decoded with the character set; the others are ASCII
_ENCODINGS = {"": "latin-1", "ISO_IR 6": "latin-1", "ISO_IR 100": "latin-1", "ISO_IR 192": "utf-8"}
_BINARY = {"US": "H", "SS": "h", "UL": "I", "SL": "i"}


class _FastView:
    """`Dataset.get` for a top-level dataset, decoding plain string and integer elements straight
    from their raw bytes. pydicom's general conversion costs more than parsing the file, and
    indexing reads ~35 elements per file; anything unusual (sequences, ambiguous VRs, other
    character sets, deferred values) still goes through pydicom.
    """

    def __init__(self, ds: Dataset) -> None:
        from pydicom.datadict import dictionary_VR, tag_for_keyword
        from pydicom.dataelem import RawDataElement

        self._dictionary_vr, self._tag_for_keyword = dictionary_VR, tag_for_keyword
        self._raw_type = RawDataElement
        self.dataset = ds
        self.file_meta = getattr(ds, "file_meta", None)
        charset = ds.get("SpecificCharacterSet") or ""
        charset = charset if isinstance(charset, str) else "\\".join(charset)
        self._encoding = _ENCODINGS.get(str(charset).strip())

    def __contains__(self, keyword: str) -> bool:
        return keyword in self.dataset

    def get(self, keyword: str, default: Any = None) -> Any:
        tag = self._tag_for_keyword(keyword)
        raw = self.dataset.get_item(tag) if tag is not None else None  # unconverted
        if isinstance(raw, self._raw_type) and raw.value is not None:
            vr = raw.VR or self._dictionary_vr(tag)
            if vr in _FAST_STRING_VRS and (vr not in _TEXT_VRS or self._encoding):
                text = bytes(raw.value).decode(self._encoding or "latin-1", errors="replace")
                parts = [part.strip(" \x00") for part in text.split("\\")]
                if parts == [""]:
                    return ""
                return parts[0] if len(parts) == 1 else parts
            if vr in _BINARY and len(raw.value) % struct.calcsize(_BINARY[vr]) == 0:
                order = "<" if raw.is_little_endian else ">"
                count = len(raw.value) // struct.calcsize(_BINARY[vr])
                values = struct.unpack(f"{order}{count}{_BINARY[vr]}", raw.value)
                if not values:
                    return default
                return values[0] if count == 1 else list(values)
        return self.dataset.get(keyword, default)


def _first_item(ds: Dataset, keyword: str) -> Dataset | None:
    seq = ds.get(keyword)
    return seq[0] if seq else None


def _from_groups(groups: list[Dataset], macro: str, keyword: str) -> Any:
    """`keyword` inside the first functional group (per-frame, then shared) that has `macro`."""
    for group in groups:
        item = _first_item(group, macro)
        if item is not None and item.get(keyword) not in (None, ""):
            return item.get(keyword)
    return None


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return [value]
    return list(value)


def _vector(value: Any, n: int) -> tuple[float, ...] | None:
    values = _as_list(value)
    if len(values) != n:
        return None
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError):
        return None


def _float_or_none(value: Any) -> float | None:
    values = _as_list(value)
    if not values:
        return None
    try:
        return float(values[0])
    except (TypeError, ValueError):
        return None


_first_float = _float_or_none


def _int_or_none(value: Any) -> int | None:
    number = _float_or_none(value)
    return None if number is None else int(number)


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def _text_or_none(value: Any) -> str | None:
    return None if value is None or value == "" else str(value).strip()


def _units(ds: Dataset, modality: str) -> str:
    rescale_type = _text(ds, "RescaleType")
    if rescale_type and rescale_type.upper() != "US":
        return rescale_type
    return "HU" if modality == "CT" else ""


def _sop_class_name(uid: str) -> str:
    if not uid:
        return "no SOP Class UID"
    import pydicom.uid

    try:
        return f"{pydicom.uid.UID(uid).name}"
    except Exception:  # an unknown private class: the number itself
        return uid
