"""A volume written as a new DICOM image series: derived from a source, or generated (synthetic).

Derived series keep their source's patient, study and frame of reference, get new series and
instance UIDs, and reference the source series (ReferencedSeriesSequence) and, per image, the
source image of the same slice (SourceImageSequence). Generated series get a new study, a
synthetic patient, no identifier from any source, and SYNTHETIC in their description. Both say
in DerivationDescription which analysis (plugin, version) made them.

CT-valued volumes become CT Image Storage (HU through rescale slope/intercept), MR-valued ones MR
Image Storage, anything else Secondary Capture with the image-plane attributes kept so the
series still loads in 3-D.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workstation.core.volume import Volume
from workstation.dicom.write.provenance import MANUFACTURER, Provenance, new_uid
from workstation.dicom.write.sources import SourceSeries

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
SECONDARY_CAPTURE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
SOURCE_IMAGE_PURPOSE = ("121322", "DCM", "Source image for image processing operation")

_PATIENT_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "IssuerOfPatientID",
    "PatientAge",
    "PatientIdentityRemoved",
    "DeidentificationMethod",
)
_STUDY_KEYWORDS = (
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "StudyDescription",
)


@dataclass(frozen=True)
class Encoding:
    """How modality values are stored: stored = (value - intercept) / slope, as int16 or uint16."""

    dtype: np.dtype
    slope: float
    intercept: float

    def encode(self, values: np.ndarray) -> np.ndarray:
        info = np.iinfo(self.dtype)
        stored = np.rint((np.nan_to_num(values.astype(np.float64)) - self.intercept) / self.slope)
        return np.clip(stored, info.min, info.max).astype(self.dtype)


def choose_encoding(values: np.ndarray) -> Encoding:
    """Integers that fit 16 bits are stored as they are (slope 1); anything else is scaled
    linearly into int16, which keeps about 1/65535 of the value range. Works slice by slice so
    a large float volume is never copied whole."""
    is_int = np.issubdtype(values.dtype, np.integer)
    lo, hi, integral = np.inf, -np.inf, True
    for plane in values:
        finite = plane if is_int else plane[np.isfinite(plane)]
        if finite.size == 0:
            continue
        lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
        if not is_int and integral and np.any(np.mod(finite, 1) != 0):
            integral = False
    if not np.isfinite(lo):
        lo, hi = 0.0, 0.0
    if integral and lo >= -32768 and hi <= 32767:
        return Encoding(np.dtype(np.int16), 1.0, 0.0)
    if integral and lo >= 0 and hi <= 65535:
        return Encoding(np.dtype(np.uint16), 1.0, 0.0)
    span = hi - lo if hi > lo else 1.0
    slope = span / 65534.0
    intercept = lo + 32767.0 * slope
    return Encoding(np.dtype(np.int16), slope, intercept)


def sop_class_for(modality: str) -> str:
    return {"CT": CT_IMAGE_STORAGE, "MR": MR_IMAGE_STORAGE}.get(
        modality.upper(), SECONDARY_CAPTURE_STORAGE
    )


def write_image_series(
    volume: Volume,
    out_dir: Path,
    provenance: Provenance,
    *,
    source: SourceSeries | None,
    generated: bool,
    modality: str,
    series_description: str,
    series_number: int = 901,
    window: tuple[float, float] | None = None,
) -> list[Path]:
    """Write `volume` as one file per slice into `out_dir`; returns the paths in slice order.

    `source` is required for a derived series (its patient, study and images are referenced)
    and ignored for a generated one, which never carries identifiers from a source.
    """
    if not generated and source is None:
        raise ValueError("a derived series needs its DICOM source to reference")
    out_dir.mkdir(parents=True, exist_ok=True)
    modality = (modality or "OT").upper()
    sop_class = sop_class_for(modality)
    encoding = choose_encoding(volume.array)
    description = series_description
    if generated and "SYNTHETIC" not in description.upper():
        description = f"SYNTHETIC {description}".strip()
    now = _dt.datetime.now()
    series = {
        "SeriesInstanceUID": new_uid(),
        "SeriesNumber": series_number,
        "SeriesDescription": provenance.series_description(description),
        "Modality": modality,
        "FrameOfReferenceUID": new_uid() if generated else _frame_of_reference(source),
        "now": now,
    }
    common = _patient_and_study(source, generated, now)
    window = window or _default_window(volume, encoding)
    paths = []
    for k in range(volume.shape[0]):
        ds = _slice_dataset(
            volume,
            k,
            encoding.encode(volume.array[k]),
            encoding,
            sop_class,
            series,
            common,
            provenance,
            source,
            generated,
            window,
        )
        path = out_dir / f"{k + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _frame_of_reference(source: SourceSeries | None) -> str:
    uid = getattr(source.first, "FrameOfReferenceUID", "") if source is not None else ""
    return str(uid) or new_uid()


def _patient_and_study(
    source: SourceSeries | None, generated: bool, now: _dt.datetime
) -> dict[str, Any]:
    if generated:
        study_uid = new_uid()
        return {
            "PatientName": "SYNTHETIC^GENERATED",
            "PatientID": "SYNTHETIC-" + study_uid.rsplit(".", 1)[-1][-12:],
            "PatientBirthDate": "",
            "PatientSex": "O",
            "StudyInstanceUID": study_uid,
            "StudyDate": now.strftime("%Y%m%d"),
            "StudyTime": now.strftime("%H%M%S"),
            "ReferringPhysicianName": "",
            "StudyID": "SYNTH",
            "AccessionNumber": "",
            "StudyDescription": "SYNTHETIC",
            "PatientComments": "Synthetic data made by a generative model; not a real patient.",
        }
    first = source.first
    values = {
        "PatientName": "",
        "PatientID": "",
        "PatientBirthDate": "",
        "PatientSex": "",
        "StudyDate": "",
        "StudyTime": "",
        "ReferringPhysicianName": "",
        "StudyID": "",
        "AccessionNumber": "",
    }
    for keyword in (*_PATIENT_KEYWORDS, *_STUDY_KEYWORDS):
        if keyword in first:
            values[keyword] = first[keyword].value
    values["StudyInstanceUID"] = str(first.StudyInstanceUID)
    return values


def _default_window(volume: Volume, encoding: Encoding) -> tuple[float, float]:
    """The volume's own window when it has one, else its stored value range."""
    meta = volume.metadata or {}
    center, width = meta.get("window_center"), meta.get("window_width")
    if center is not None and width is not None:
        return float(center), float(width)
    ranges = [(int(p.min()), int(p.max())) for p in map(encoding.encode, volume.array)]
    lo, hi = float(min(r[0] for r in ranges)), float(max(r[1] for r in ranges))
    lo, hi = lo * encoding.slope + encoding.intercept, hi * encoding.slope + encoding.intercept
    return (lo + hi) / 2.0, max(hi - lo, 1.0)


def _slice_dataset(
    volume: Volume,
    k: int,
    pixels: np.ndarray,
    encoding: Encoding,
    sop_class: str,
    series: dict[str, Any],
    common: dict[str, Any],
    provenance: Provenance,
    source: SourceSeries | None,
    generated: bool,
    window: tuple[float, float],
) -> Any:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

    sop_uid = new_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ImageType = _image_type(sop_class)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    now = series["now"]
    ds.InstanceCreationDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = now.strftime("%H%M%S")
    ds.ContentDate = now.strftime("%Y%m%d")
    ds.ContentTime = now.strftime("%H%M%S")
    ds.SeriesDate = now.strftime("%Y%m%d")
    ds.SeriesTime = now.strftime("%H%M%S")
    for keyword, value in common.items():
        setattr(ds, keyword, value)
    ds.Modality = series["Modality"]
    ds.SeriesInstanceUID = series["SeriesInstanceUID"]
    ds.SeriesNumber = series["SeriesNumber"]
    ds.SeriesDescription = series["SeriesDescription"]
    ds.InstanceNumber = k + 1
    ds.FrameOfReferenceUID = series["FrameOfReferenceUID"]
    ds.PositionReferenceIndicator = ""
    ds.Laterality = _source_value(source, "Laterality", "") if not generated else ""
    ds.PatientPosition = _source_value(source, "PatientPosition", "") if not generated else ""
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = provenance.model_name
    ds.SoftwareVersions = list(provenance.software_versions)
    ds.DerivationDescription = provenance.derivation()
    ds.BurnedInAnnotation = "NO"
    if sop_class == SECONDARY_CAPTURE_STORAGE:
        ds.ConversionType = "WSD"
        ds.PatientOrientation = [_letters(volume.direction[:, 0]), _letters(volume.direction[:, 1])]

    # image plane
    position = volume.index_to_world((0.0, 0.0, float(k)))
    direction = volume.direction
    ds.ImagePositionPatient = [_ds(v) for v in position]
    ds.ImageOrientationPatient = [_ds(v) for v in (*direction[:, 0], *direction[:, 1])]
    ds.PixelSpacing = [_ds(volume.spacing[1]), _ds(volume.spacing[0])]
    ds.SliceThickness = _ds(volume.spacing[2])
    normal = np.cross(direction[:, 0], direction[:, 1])
    ds.SliceLocation = _ds(float(np.dot(position, normal)))

    # pixels
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if encoding.dtype == np.int16 else 0
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    ds.RescaleIntercept = _ds(encoding.intercept)
    ds.RescaleSlope = _ds(encoding.slope)
    ds.WindowCenter = _ds(window[0])
    ds.WindowWidth = _ds(max(window[1], 1.0))
    if sop_class == CT_IMAGE_STORAGE:
        ds.RescaleType = "HU"
        ds.KVP = ""
        ds.AcquisitionNumber = ""
    elif sop_class == MR_IMAGE_STORAGE:
        ds.ScanningSequence = "RM"  # research mode: values computed, not acquired
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "3D"
        ds.RepetitionTime = ""
        ds.EchoTime = ""
        ds.EchoTrainLength = ""
        ds.MagneticFieldStrength = ""
        ds.SequenceName = provenance.model_name[:16]
        ds.ImagedNucleus = "1H"
        ds.AcquisitionNumber = ""
    elif sop_class == SECONDARY_CAPTURE_STORAGE:
        ds.RescaleType = "US"

    if not generated and source is not None:
        _reference_source(ds, source, k)
    return ds


def _image_type(sop_class: str) -> list[str]:
    """DERIVED\\SECONDARY, with the third value CT and MR images require."""
    if sop_class == CT_IMAGE_STORAGE:
        return ["DERIVED", "SECONDARY", "AXIAL"]
    if sop_class == MR_IMAGE_STORAGE:
        return ["DERIVED", "SECONDARY", "OTHER"]
    return ["DERIVED", "SECONDARY"]


def _source_value(source: SourceSeries | None, keyword: str, default: Any) -> Any:
    if source is None or keyword not in source.first:
        return default
    return source.first[keyword].value


def _reference_source(ds: Any, source: SourceSeries, k: int) -> None:
    from pydicom.dataset import Dataset

    def instance(src: Any) -> Any:
        item = Dataset()
        item.ReferencedSOPClassUID = src.SOPClassUID
        item.ReferencedSOPInstanceUID = src.SOPInstanceUID
        return item

    series_item = Dataset()
    series_item.SeriesInstanceUID = source.first.SeriesInstanceUID
    series_item.ReferencedInstanceSequence = [instance(src) for src in source.datasets]
    ds.ReferencedSeriesSequence = [series_item]

    placement = min(source.placements, key=lambda p: abs(p.slice_index - k))
    src = (
        source.datasets[0]
        if source.multiframe
        else source.datasets[source.placements.index(placement)]
    )
    item = instance(src)
    if source.multiframe:
        item.ReferencedFrameNumber = placement.frame + 1
    purpose = Dataset()
    purpose.CodeValue, purpose.CodingSchemeDesignator, purpose.CodeMeaning = SOURCE_IMAGE_PURPOSE
    item.PurposeOfReferenceCodeSequence = [purpose]
    ds.SourceImageSequence = [item]


def _letters(axis: np.ndarray) -> str:
    """PatientOrientation letters of a direction in LPS, strongest component first ('L', 'PH')."""
    names = (("L", "R"), ("P", "A"), ("H", "F"))
    order = np.argsort(-np.abs(axis))
    letters = [names[a][0 if axis[a] > 0 else 1] for a in order if abs(axis[a]) > 1e-3]
    return "".join(letters[:3]) or "L"


def _ds(value: float) -> str:
    """A decimal string (DS, at most 16 characters) for `value`."""
    value = float(value)
    if value == 0:
        return "0"
    for digits in range(10, 0, -1):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return text
    return f"{value:.6e}"[:16]
