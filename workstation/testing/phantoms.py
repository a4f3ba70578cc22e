"""Synthetic DICOM series for tests, benchmarks and the demo: geometry with a known truth.

Two kinds:

- `write_analytic_series`: every pixel holds a known linear function of its LPS position (in the
  modality's units, through rescale slope/intercept), so a loader's geometry can be checked voxel
  by voxel: any flipped, shifted or mis-spaced axis changes the values. Options cover orientations
  (axial, coronal, sagittal, oblique), non-square pixels, shuffled file names, reversed
  InstanceNumber, CT and MR, enhanced multi-frame, every transfer syntax pydicom or dcmtk can
  encode here, per-frame rescale, MONOCHROME1, padding, gantry tilt, missing slices and uneven
  spacing.
- `write_ct_phantom_series` / `write_mr_phantom_series`: a realistic-looking body (ellipse,
  lungs, spine, liver, kidneys, lesions) with realistic headers, for the demo and plugins.
  `ct_phantom` gives the same image and its ground-truth label map without writing files.

Every series is marked SYNTHETIC in SeriesDescription (and ImageComments), as the workstation
marks all synthetic data. Nothing here touches the network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2.1"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"
SECONDARY_CAPTURE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
RLE = "1.2.840.10008.1.2.5"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_2000_LOSSLESS = "1.2.840.10008.1.2.4.90"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
# Encoded by dcmtk's dcmcjpeg (pydicom has no JPEG encoder); tests skip them without dcmtk.
DCMTK_SYNTAXES = {
    JPEG_LOSSLESS_SV1: ("+e1",),
    JPEG_BASELINE: ("+eb", "+sr", "+q", "95"),  # +sr keeps stored values and rescale as they are
}
LOSSLESS_SYNTAXES = (
    EXPLICIT_LE,
    IMPLICIT_LE,
    EXPLICIT_BE,
    DEFLATED,
    RLE,
    JPEG_LS_LOSSLESS,
    JPEG_2000_LOSSLESS,
    JPEG_LOSSLESS_SV1,
)

# Row cosine, column cosine: the slice normal (row x column) gives the stacking direction.
ORIENTATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "axial": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
}
# Truth function: value = A . (x, y, z) + D, in modality units (HU for CT).
ANALYTIC_GRADIENT = (2.9, -4.3, 6.1)
ANALYTIC_OFFSET = 40.123  # thousandths digit 3: values never fall on a rounding tie


def analytic_value(points_lps: np.ndarray) -> np.ndarray:
    """The phantom's value at LPS points (..., 3), before rounding to stored values."""
    return np.asarray(points_lps, dtype=float) @ np.asarray(ANALYTIC_GRADIENT) + ANALYTIC_OFFSET


def oblique_cosines(
    yaw_deg: float = 20.0, pitch_deg: float = 15.0
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Row and column cosines of an axial plane turned about z then about the row axis."""
    a, b = np.radians(yaw_deg), np.radians(pitch_deg)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    row = rz @ np.array([1.0, 0, 0])
    col = rz @ np.array([0, 1.0, 0])
    col = np.cos(b) * col + np.sin(b) * np.cross(row, col)  # tilt the column axis out of plane
    return tuple(row), tuple(col / np.linalg.norm(col))


def grid_centres(geometry: object) -> np.ndarray:
    """LPS centre of every voxel of a `Geometry` (or anything with ``.geometry``), (z, y, x, 3)."""
    grid = getattr(geometry, "geometry", geometry)
    nz, ny, nx = grid.shape
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    return grid.index_to_world(np.stack([i, j, k], axis=-1).astype(float))


@dataclass
class AnalyticSeries:
    """A written analytic series and the regular grid it was sampled on (the expected Volume)."""

    folder: Path
    paths: list[Path]
    series_uid: str
    study_uid: str
    sop_uids: list[str]
    shape: tuple[int, int, int]  # (z, y, x)
    spacing: tuple[float, float, float]  # (x, y, z) mm
    origin: tuple[float, float, float]
    direction: np.ndarray  # columns: row, column, normal cosines (LPS)
    slope: float
    intercept: float
    stored_dtype: np.dtype = field(default_factory=lambda: np.dtype(np.int16))
    slice_positions: list[float] = field(default_factory=list)  # k of each written slice

    def truth(
        self, points_lps: np.ndarray, slope: float | None = None, intercept: float | None = None
    ) -> np.ndarray:
        """What a reader must return at `points_lps`: the function through stored-value rounding."""
        s = self.slope if slope is None else slope
        c = self.intercept if intercept is None else intercept
        return np.rint((analytic_value(points_lps) - c) / s) * s + c

    def voxel_centres(self) -> np.ndarray:
        """LPS centre of every voxel of the expected grid, shaped (z, y, x, 3)."""
        nz, ny, nx = self.shape
        k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
        ijk = np.stack([i, j, k], axis=-1).astype(float)
        return ijk * np.asarray(self.spacing) @ self.direction.T + np.asarray(self.origin)


def write_analytic_series(
    folder: str | os.PathLike[str],
    *,
    orientation: str | tuple[Sequence[float], Sequence[float]] = "axial",
    shape: tuple[int, int, int] = (10, 20, 24),
    spacing: tuple[float, float, float] = (0.8, 0.6, 1.5),
    origin: tuple[float, float, float] = (-12.0, -9.0, 30.0),
    modality: str = "CT",
    slope: float = 1.0,
    intercept: float | None = None,
    transfer_syntax: str = EXPLICIT_LE,
    enhanced: bool = False,
    shuffle: bool = True,
    reverse_instance_numbers: bool = False,
    slice_positions: Sequence[float] | None = None,
    tilt_deg: float = 0.0,
    photometric: str = "MONOCHROME2",
    per_frame_rescale: Callable[[int], tuple[float, float]] | None = None,
    bits_allocated: int = 16,
    pixel_representation: int | None = None,
    seed: int = 0,
    series_uid: str | None = None,
    study_uid: str | None = None,
    patient_id: str = "PHANTOM-1",
    extra: Callable[[object, int], None] | None = None,
) -> AnalyticSeries:
    """Write a series whose values follow `analytic_value`; return where and on what grid.

    `slice_positions` lists the k index (in units of spacing[2]) of each written slice, for
    missing slices (skip an integer) or uneven spacing; default ``range(shape[0])``.
    `tilt_deg` shears the stack along the column direction, like a CT gantry tilt.
    `per_frame_rescale(k)` gives each slice its own (slope, intercept).
    `extra(dataset, k)` may change each slice's dataset before it is written.
    """
    from pydicom.uid import generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if isinstance(orientation, str):
        row, col = ORIENTATIONS[orientation] if orientation != "oblique" else oblique_cosines()
    else:
        row, col = orientation
    row_v = np.asarray(row, float) / np.linalg.norm(row)
    col_v = np.asarray(col, float) / np.linalg.norm(col)
    normal = np.cross(row_v, col_v)
    direction = np.column_stack([row_v, col_v, normal])
    nz, ny, nx = shape
    if slice_positions is None:
        slice_positions = range(nz)
    positions_k = [float(v) for v in slice_positions]
    if intercept is None:  # MR: unsigned stored values, so shift the function above zero
        intercept = -1024.0 if modality == "CT" else -500.0
    signed = (modality == "CT") if pixel_representation is None else pixel_representation == 1
    dtype = np.dtype(f"{'i' if signed else 'u'}{bits_allocated // 8}")
    series_uid = series_uid or generate_uid()
    study_uid = study_uid or generate_uid()
    frame_of_reference = generate_uid()
    shear = np.tan(np.radians(tilt_deg)) * spacing[2]

    j, i = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    slices = []
    for n, k in enumerate(positions_k):
        position = np.asarray(origin) + k * spacing[2] * normal + k * shear * col_v
        points = position + i[..., None] * spacing[0] * row_v + j[..., None] * spacing[1] * col_v
        s, c = per_frame_rescale(n) if per_frame_rescale else (slope, intercept)
        stored = np.rint((analytic_value(points) - c) / s)
        info = np.iinfo(dtype)
        if stored.min() < info.min or stored.max() > info.max:
            raise ValueError(f"phantom values {stored.min()}..{stored.max()} do not fit {dtype}")
        if photometric == "MONOCHROME1":
            stored = info.max + info.min - stored if not signed else -1 - stored
        slices.append((n, tuple(float(v) for v in position), stored.astype(dtype), s, c))

    common = dict(
        modality=modality,
        series_uid=series_uid,
        study_uid=study_uid,
        frame_of_reference=frame_of_reference,
        patient_id=patient_id,
        orientation=tuple(float(v) for v in (*row_v, *col_v)),
        spacing=spacing,
        photometric=photometric,
        bits_allocated=bits_allocated,
        signed=signed,
        description=f"SYNTHETIC analytic phantom {modality} "
        f"{orientation if isinstance(orientation, str) else 'custom'}",
    )
    paths: list[Path] = []
    sop_uids: list[str] = []
    if enhanced:
        order = rng.permutation(len(slices)) if shuffle else np.arange(len(slices))
        path = folder / "enhanced.dcm"
        ds = _enhanced_dataset([slices[o] for o in order], common)
        sop_uids.append(ds.SOPInstanceUID)
        _save(ds, path, transfer_syntax)
        paths.append(path)
    else:
        names = [f"IM{n:05d}.dcm" for n in range(len(slices))]
        if shuffle:
            names = [names[o] for o in rng.permutation(len(names))]
        for (n, position, stored, s, c), name in zip(slices, names):
            number = len(slices) - n if reverse_instance_numbers else n + 1
            ds = _single_frame_dataset(stored, position, s, c, number, common)
            if extra is not None:
                extra(ds, n)
            path = folder / name
            _save(ds, path, transfer_syntax)
            paths.append(path)
            sop_uids.append(ds.SOPInstanceUID)
    return AnalyticSeries(
        folder=folder,
        paths=paths,
        series_uid=series_uid,
        study_uid=study_uid,
        sop_uids=sop_uids,
        shape=(round(max(positions_k)) + 1, ny, nx),
        spacing=spacing,
        origin=tuple(float(v) for v in origin),  # type: ignore[arg-type]
        direction=direction,
        slope=slope,
        intercept=intercept,
        stored_dtype=dtype,
        slice_positions=positions_k,
    )


# --- datasets -----------------------------------------------------------------------------------
def _patient_study_series(ds: object, common: dict, sop_class: str) -> None:
    """Patient, study, series, equipment and frame-of-reference modules, as scanners write."""
    from pydicom.uid import generate_uid

    now = datetime(2024, 3, 14, 9, 30, 0)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.PatientID = common["patient_id"]
    ds.PatientName = common.get("patient_name", "PHANTOM^ANALYTIC")
    ds.PatientBirthDate = common.get("birth_date", "19700101")
    ds.PatientSex = common.get("sex", "O")
    ds.StudyInstanceUID = common["study_uid"]
    ds.StudyDate = common.get("study_date", now.strftime("%Y%m%d"))
    ds.StudyTime = now.strftime("%H%M%S")
    ds.StudyID = "1"
    ds.AccessionNumber = common.get("accession", "PH0001")
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = common.get("study_description", "SYNTHETIC phantom study")
    ds.Modality = common["modality"]
    ds.SeriesInstanceUID = common["series_uid"]
    ds.SeriesNumber = common.get("series_number", 1)
    ds.SeriesDescription = common["description"]
    ds.SeriesDate = ds.StudyDate
    ds.SeriesTime = ds.StudyTime
    ds.ContentDate = ds.StudyDate
    ds.ContentTime = ds.StudyTime
    ds.Manufacturer = "Workstation phantoms"
    ds.ManufacturerModelName = "analytic"
    ds.InstitutionName = "SYNTHETIC"
    ds.FrameOfReferenceUID = common["frame_of_reference"]
    ds.PositionReferenceIndicator = ""
    ds.ImageComments = "SYNTHETIC phantom: not patient data"
    ds.BurnedInAnnotation = "NO"


def _image_pixel(ds: object, rows: int, columns: int, common: dict) -> None:
    bits = common["bits_allocated"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = common["photometric"]
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 1 if common["signed"] else 0


def _single_frame_dataset(
    stored: np.ndarray,
    position: tuple[float, float, float],
    slope: float,
    intercept: float,
    number: int,
    common: dict,
) -> object:
    from pydicom.dataset import Dataset

    ds = Dataset()
    sop_class = CT_IMAGE_STORAGE if common["modality"] == "CT" else MR_IMAGE_STORAGE
    _patient_study_series(ds, common, sop_class)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceNumber = number
    ds.ImagePositionPatient = [round(v, 6) for v in position]
    ds.ImageOrientationPatient = [round(v, 8) for v in common["orientation"]]
    ds.PixelSpacing = [common["spacing"][1], common["spacing"][0]]  # row spacing, column spacing
    ds.SliceThickness = common["spacing"][2]
    _image_pixel(ds, stored.shape[0], stored.shape[1], common)
    ds.RescaleSlope = _ds_number(slope)
    ds.RescaleIntercept = _ds_number(intercept)
    if common["modality"] == "CT":
        ds.RescaleType = "HU"
        ds.KVP = 120
        ds.WindowCenter = 40
        ds.WindowWidth = 400
    else:
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.EchoNumbers = 1
        ds.EchoTime = 12
        ds.RepetitionTime = 500
        ds.MagneticFieldStrength = 1.5
    ds.PixelData = np.ascontiguousarray(stored).tobytes()
    ds["PixelData"].VR = "OW" if common["bits_allocated"] > 8 else "OB"
    return ds


def _enhanced_dataset(slices: list, common: dict) -> object:
    """One enhanced multi-frame file: shared orientation and spacing, per-frame position and
    rescale, frames in the order given (not necessarily along the normal)."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    ds = Dataset()
    is_ct = common["modality"] == "CT"
    sop_class = ENHANCED_CT_IMAGE_STORAGE if is_ct else ENHANCED_MR_IMAGE_STORAGE
    _patient_study_series(ds, common, sop_class)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    ds.InstanceNumber = 1
    ds.ContentQualification = "PRODUCT"
    rows, columns = slices[0][2].shape
    _image_pixel(ds, rows, columns, common)
    ds.NumberOfFrames = len(slices)

    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [common["spacing"][1], common["spacing"][0]]
    measures.SliceThickness = common["spacing"][2]
    shared.PixelMeasuresSequence = DicomSequence([measures])
    plane = Dataset()
    plane.ImageOrientationPatient = [round(v, 8) for v in common["orientation"]]
    shared.PlaneOrientationSequence = DicomSequence([plane])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])

    per_frame = []
    for number, (_, position, _, slope, intercept) in enumerate(slices, start=1):
        item = Dataset()
        content = Dataset()
        content.StackID = "1"
        content.InStackPositionNumber = number
        content.FrameAcquisitionNumber = number
        item.FrameContentSequence = DicomSequence([content])
        pos = Dataset()
        pos.ImagePositionPatient = [round(v, 6) for v in position]
        item.PlanePositionSequence = DicomSequence([pos])
        transform = Dataset()
        transform.RescaleSlope = _ds_number(slope)
        transform.RescaleIntercept = _ds_number(intercept)
        transform.RescaleType = "HU" if is_ct else "US"
        item.PixelValueTransformationSequence = DicomSequence([transform])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    ds.PixelData = b"".join(np.ascontiguousarray(s[2]).tobytes() for s in slices)
    ds["PixelData"].VR = "OW" if common["bits_allocated"] > 8 else "OB"
    return ds


def _ds_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _save(ds: object, path: Path, transfer_syntax: str) -> None:
    """Write `ds` (native little-endian pixels) in `transfer_syntax`."""
    from pydicom.dataset import FileMetaDataset

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = EXPLICIT_LE
    ds.file_meta = meta
    if transfer_syntax in (EXPLICIT_LE, IMPLICIT_LE, DEFLATED):
        meta.TransferSyntaxUID = transfer_syntax
        ds.save_as(path, enforce_file_format=True)
    elif transfer_syntax == EXPLICIT_BE:
        meta.TransferSyntaxUID = EXPLICIT_BE
        if ds.BitsAllocated > 8:
            native = np.frombuffer(
                ds.PixelData,
                dtype=f"<{'i' if ds.PixelRepresentation else 'u'}{ds.BitsAllocated // 8}",
            )
            ds.PixelData = native.astype(native.dtype.newbyteorder(">")).tobytes()
        ds.save_as(path, enforce_file_format=True)
    elif transfer_syntax in DCMTK_SYNTAXES:
        _dcmtk_compress(ds, path, DCMTK_SYNTAXES[transfer_syntax])
    else:
        ds.compress(transfer_syntax, generate_instance_uid=False)
        ds.save_as(path, enforce_file_format=True)


def dcmtk_available() -> bool:
    """Whether dcmtk's dcmcjpeg is installed (JPEG lossless and baseline phantoms need it)."""
    return shutil.which("dcmcjpeg") is not None


def _dcmtk_compress(ds: object, path: Path, options: Sequence[str]) -> None:
    if not dcmtk_available():
        raise RuntimeError("dcmcjpeg (dcmtk) is needed to write JPEG phantoms: apt install dcmtk")
    with tempfile.TemporaryDirectory() as scratch:
        plain = Path(scratch) / "plain.dcm"
        ds.save_as(plain, enforce_file_format=True)
        subprocess.run(
            ["dcmcjpeg", *options, str(plain), str(path)], check=True, capture_output=True
        )


# --- realistic demo phantoms -------------------------------------------------------------------
LABELS = {1: "body", 2: "lung", 3: "bone", 4: "liver", 5: "kidney", 6: "lesion"}


def ct_phantom(
    shape: tuple[int, int, int] = (48, 192, 192),
    spacing: tuple[float, float, float] = (0.9, 0.9, 2.5),
    seed: int = 0,
    lesions: int = 3,
    noise_hu: float = 12.0,
) -> tuple[np.ndarray, np.ndarray]:
    """A trunk-like CT volume in HU (int16, [z, y, x]) and its label map (uint8, `LABELS`).

    Body ellipse in soft tissue, two lungs, a spine with cortical ring, liver, two kidneys and
    `lesions` hypodense spherical lesions in the liver; Gaussian noise. Sizes scale with the
    field of view so small test volumes still contain every structure.
    """
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    hu = np.empty(shape, np.int16)
    labels = np.zeros(shape, np.uint8)
    # Coordinates in mm from the volume centre.
    x = (np.arange(nx) - (nx - 1) / 2) * spacing[0]
    y = (np.arange(ny) - (ny - 1) / 2) * spacing[1]
    half_x, half_y = nx * spacing[0] / 2, ny * spacing[1] / 2
    yy, xx = np.meshgrid(y, x, indexing="ij")
    body = (xx / (0.85 * half_x)) ** 2 + (yy / (0.62 * half_y)) ** 2 <= 1
    spine_c = (0.0, 0.38 * half_y)
    spine_r = 0.09 * min(half_x, half_y)
    spine_d = np.hypot(xx - spine_c[0], yy - spine_c[1])
    liver_c = np.array([-0.35 * half_x, -0.02 * half_y, 0.0])
    liver_r = np.array([0.33 * half_x, 0.3 * half_y, 0.32 * nz * spacing[2]])
    centres = []
    for _ in range(lesions):
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        centres.append((liver_c + 0.5 * direction * liver_r, rng.uniform(0.12, 0.22) * liver_r[0]))
    for k in range(nz):
        z = (k - (nz - 1) / 2) * spacing[2]
        slice_labels = labels[k]
        slice_labels[body] = 1
        frac = z / (0.5 * nz * spacing[2] + 1e-9)  # -1 (feet) .. 1 (head)
        lung_scale = np.clip((frac + 0.1) / 1.1, 0.0, 1.0)
        if lung_scale > 0:
            for side in (-1, 1):
                lung = ((xx - side * 0.42 * half_x) / (0.3 * half_x * lung_scale + 1e-9)) ** 2 + (
                    (yy + 0.05 * half_y) / (0.42 * half_y * lung_scale + 1e-9)
                ) ** 2 <= 1
                slice_labels[lung & body] = 2
        liver = ((xx - liver_c[0]) / liver_r[0]) ** 2 + ((yy - liver_c[1]) / liver_r[1]) ** 2 + (
            (z - liver_c[2] + 0.35 * nz * spacing[2]) / liver_r[2]
        ) ** 2 <= 1
        slice_labels[liver & body] = 4
        kidney_z = (z + 0.2 * nz * spacing[2]) / (0.18 * nz * spacing[2] + 1e-9)
        if abs(kidney_z) < 1:
            for side in (-1, 1):
                kidney = ((xx - side * 0.28 * half_x) / (0.1 * half_x)) ** 2 + (
                    (yy - 0.25 * half_y) / (0.14 * half_y)
                ) ** 2 <= 1 - kidney_z**2
                slice_labels[kidney & body] = 5
        slice_labels[spine_d <= spine_r] = 3
        for centre, radius in centres:
            zc = centre[2] - 0.35 * nz * spacing[2]
            lesion = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (z - zc) ** 2 <= radius**2
            slice_labels[lesion & (slice_labels == 4)] = 6
        values = np.full((ny, nx), -1000.0)
        values[slice_labels == 1] = 40
        values[slice_labels == 2] = -850
        values[slice_labels == 4] = 60
        values[slice_labels == 5] = 30
        values[slice_labels == 6] = 15
        values[slice_labels == 3] = np.where(spine_d[slice_labels == 3] > 0.7 * spine_r, 900, 300)
        values += rng.normal(0.0, noise_hu, size=values.shape)
        hu[k] = np.clip(np.rint(values), -1024, 3071)
    return hu, labels


def write_volume_series(
    folder: str | os.PathLike[str],
    values: np.ndarray,
    *,
    spacing: tuple[float, float, float],
    origin: tuple[float, float, float] | None = None,
    modality: str = "CT",
    patient_id: str = "DEMO-001",
    patient_name: str = "DEMO^PHANTOM",
    birth_date: str = "19600101",
    sex: str = "O",
    study_uid: str | None = None,
    series_uid: str | None = None,
    study_description: str = "SYNTHETIC phantom study",
    series_description: str | None = None,
    series_number: int = 1,
    study_date: str = "20240314",
    accession: str = "DEMO0001",
    transfer_syntax: str = EXPLICIT_LE,
) -> list[Path]:
    """Write an axial [z, y, x] volume of modality values (HU for CT) as a classic series.

    CT is stored as unsigned 12-bit-style values with intercept -1024, as most scanners do;
    MR as unsigned values with no rescale. Files are named by slice (IM00001.dcm ...).
    """
    from pydicom.uid import generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    nz, ny, nx = values.shape
    if origin is None:
        origin = (-(nx - 1) / 2 * spacing[0], -(ny - 1) / 2 * spacing[1], -(nz - 1) * spacing[2])
    is_ct = modality == "CT"
    intercept = -1024.0 if is_ct else 0.0
    description = series_description or f"SYNTHETIC {modality} phantom"
    if "SYNTHETIC" not in description.upper():
        description = f"SYNTHETIC {description}"
    common = dict(
        modality=modality,
        series_uid=series_uid or generate_uid(),
        study_uid=study_uid or generate_uid(),
        frame_of_reference=generate_uid(),
        patient_id=patient_id,
        patient_name=patient_name,
        birth_date=birth_date,
        sex=sex,
        study_date=study_date,
        accession=accession,
        study_description=study_description,
        series_number=series_number,
        orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
        spacing=spacing,
        photometric="MONOCHROME2",
        bits_allocated=16,
        signed=False,
        description=description,
    )
    paths = []
    for k in range(nz):
        stored = np.clip(np.rint(values[k] - intercept), 0, 65535).astype(np.uint16)
        position = (origin[0], origin[1], origin[2] + k * spacing[2])
        ds = _single_frame_dataset(stored, position, 1.0, intercept, k + 1, common)
        ds.BitsStored = 12 if is_ct and stored.max() < 4096 else 16
        ds.HighBit = ds.BitsStored - 1
        if is_ct:
            ds.WindowCenter, ds.WindowWidth = 40, 400
        else:
            ds.WindowCenter = int(np.percentile(values, 99) / 2)
            ds.WindowWidth = int(np.percentile(values, 99))
        path = folder / f"IM{k + 1:05d}.dcm"
        _save(ds, path, transfer_syntax)
        paths.append(path)
    return paths


def write_ct_phantom_series(
    folder: str | os.PathLike[str],
    shape: tuple[int, int, int] = (48, 192, 192),
    spacing: tuple[float, float, float] = (0.9, 0.9, 2.5),
    patient_id: str = "DEMO-001",
    seed: int = 0,
    lesions: int = 3,
    **series: object,
) -> list[Path]:
    """A realistic synthetic CT series (see `ct_phantom`) written as CT Image Storage files.

    `series` passes patient, study and series attributes through to `write_volume_series`
    (patient_name, study_uid, series_description, series_number, study_date, ...).
    """
    hu, _ = ct_phantom(shape, spacing, seed=seed, lesions=lesions)
    series.setdefault("series_description", "SYNTHETIC CT phantom chest-abdomen")
    return write_volume_series(
        folder,
        hu,
        spacing=spacing,
        modality="CT",
        patient_id=patient_id,
        **series,  # type: ignore[arg-type]
    )


def write_mr_phantom_series(
    folder: str | os.PathLike[str],
    shape: tuple[int, int, int] = (32, 160, 160),
    spacing: tuple[float, float, float] = (1.2, 1.2, 4.0),
    patient_id: str = "DEMO-001",
    seed: int = 0,
    **series: object,
) -> list[Path]:
    """A T2-like synthetic MR series of the same anatomy (fluid bright, lung and bone dark)."""
    _, labels = ct_phantom(shape, spacing, seed=seed, noise_hu=0.0)
    intensity = np.array([0, 300, 20, 60, 450, 700, 900], dtype=float)  # by label value
    rng = np.random.default_rng(seed + 1)
    values = intensity[labels] + rng.normal(0, 15, size=labels.shape)
    values = np.clip(np.rint(values), 0, 4095).astype(np.int16)
    series.setdefault("series_description", "SYNTHETIC MR phantom T2")
    return write_volume_series(
        folder,
        values,
        spacing=spacing,
        modality="MR",
        patient_id=patient_id,
        **series,  # type: ignore[arg-type]
    )
