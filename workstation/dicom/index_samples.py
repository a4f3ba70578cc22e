"""Small synthetic CT series written with pydicom, for index tests and the index benchmark.

Each slice's pixels are a known function of its index (value = 10 * slice + column), so a test can
check that what comes back from the store is the right slice in the right place.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"


@dataclass(frozen=True)
class SampleSeries:
    """Where a written series lies and what it is."""

    folder: Path
    paths: tuple[Path, ...]
    patient_id: str
    study_uid: str
    series_uid: str
    sop_uids: tuple[str, ...]
    rows: int
    columns: int
    spacing: tuple[float, float, float]  # (x, y, z) mm
    origin: tuple[float, float, float]


def write_series(
    folder: str | os.PathLike[str],
    slices: int = 4,
    rows: int = 8,
    columns: int = 6,
    *,
    patient_id: str = "PAT-1",
    patient_name: str = "Phantom^One",
    study_uid: str | None = None,
    series_uid: str | None = None,
    series_description: str = "phantom",
    pixel_spacing: tuple[float, float] = (0.8, 0.7),  # (row spacing, column spacing)
    slice_spacing: float = 2.5,
    origin: tuple[float, float, float] = (-20.0, -30.0, 40.0),
    orientation: Sequence[float] = (1, 0, 0, 0, 1, 0),
    file_prefix: str = "slice",
) -> SampleSeries:
    """Write a CT series, one file per slice, and describe it."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    row_dir = np.asarray(orientation[:3], dtype=float)
    col_dir = np.asarray(orientation[3:], dtype=float)
    normal = np.cross(row_dir, col_dir)
    frame_of_reference_uid = generate_uid()
    paths: list[Path] = []
    sops: list[str] = []
    for k in range(slices):
        sop = generate_uid()
        position = np.asarray(origin) + k * slice_spacing * normal
        pixels = (10 * k + np.arange(columns, dtype=np.int16)[None, :]).repeat(rows, axis=0)
        ds = _ct_dataset(
            sop=sop,
            frame_of_reference_uid=frame_of_reference_uid,
            study_uid=study_uid,
            series_uid=series_uid,
            patient_id=patient_id,
            patient_name=patient_name,
            description=series_description,
            position=position,
            orientation=orientation,
            pixel_spacing=pixel_spacing,
            thickness=slice_spacing,
            instance_number=k + 1,
            pixels=pixels.astype(np.int16),
        )
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
        meta.MediaStorageSOPInstanceUID = sop
        meta.TransferSyntaxUID = EXPLICIT_VR_LITTLE_ENDIAN
        ds.file_meta = meta
        path = folder / f"{file_prefix}{k:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
        sops.append(sop)
    return SampleSeries(
        folder=folder,
        paths=tuple(paths),
        patient_id=patient_id,
        study_uid=study_uid,
        series_uid=series_uid,
        sop_uids=tuple(sops),
        rows=rows,
        columns=columns,
        spacing=(pixel_spacing[1], pixel_spacing[0], slice_spacing),
        origin=tuple(float(v) for v in origin),  # type: ignore[arg-type]
    )


def _ct_dataset(**v) -> object:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = v["sop"]
    ds.PatientID = v["patient_id"]
    ds.PatientName = v["patient_name"]
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = v["study_uid"]
    ds.StudyDate = "20240101"
    ds.StudyTime = "120000"
    ds.StudyDescription = "index sample"
    ds.AccessionNumber = "A1"
    ds.StudyID = "1"
    ds.SeriesInstanceUID = v["series_uid"]
    ds.SeriesNumber = 1
    ds.SeriesDescription = v["description"]
    ds.Modality = "CT"
    ds.FrameOfReferenceUID = v["frame_of_reference_uid"]
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceNumber = v["instance_number"]
    ds.ImagePositionPatient = [float(x) for x in v["position"]]
    ds.ImageOrientationPatient = [float(x) for x in v["orientation"]]
    ds.PixelSpacing = [float(x) for x in v["pixel_spacing"]]
    ds.SliceThickness = float(v["thickness"])
    pixels = v["pixels"]
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleSlope = 1
    ds.RescaleIntercept = -1024
    ds.RescaleType = "HU"
    ds.WindowCenter = 40
    ds.WindowWidth = 400
    ds.PixelData = pixels.tobytes()
    return ds


def write_bad_files(folder: str | os.PathLike[str], good: SampleSeries) -> dict[str, Path]:
    """One file of each kind the index must report, next to a good series; kind -> path.

    Kinds: not_dicom, truncated (inside the header), truncated_pixels, dicomdir, no_pixels,
    no_geometry, odd_size (rows/columns that differ from the rest of `good`'s series), duplicate
    (a copy of `good`'s first file).
    """
    import pydicom
    from pydicom.uid import generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    made: dict[str, Path] = {}

    made["not_dicom"] = folder / "notes.txt"
    made["not_dicom"].write_text("not an image\n")

    source = good.paths[0].read_bytes()
    made["truncated"] = folder / "truncated.dcm"
    made["truncated"].write_bytes(source[:300])

    made["truncated_pixels"] = folder / "truncated_pixels.dcm"
    made["truncated_pixels"].write_bytes(source[: len(source) - 10])

    made["dicomdir"] = folder / "DICOMDIR"
    _write_dicomdir(made["dicomdir"])

    def variant(name: str, change) -> Path:
        ds = pydicom.dcmread(good.paths[0])
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        change(ds)
        path = folder / name
        ds.save_as(path, enforce_file_format=True)
        return path

    made["no_pixels"] = variant("no_pixels.dcm", lambda ds: delattr(ds, "PixelData"))

    def drop_geometry(ds) -> None:
        del ds.ImagePositionPatient
        del ds.ImageOrientationPatient
        ds.SeriesInstanceUID = generate_uid()

    made["no_geometry"] = variant("no_geometry.dcm", drop_geometry)

    def resize(ds) -> None:
        ds.Rows, ds.Columns = good.rows + 2, good.columns + 3
        ds.PixelData = np.zeros((ds.Rows, ds.Columns), np.int16).tobytes()
        ds.ImagePositionPatient = [float(v) for v in good.origin[:2]] + [good.origin[2] + 100.0]

    made["odd_size"] = variant("odd_size.dcm", resize)

    made["duplicate"] = folder / "zz_duplicate.dcm"
    made["duplicate"].write_bytes(source)
    return made


def _write_dicomdir(path: Path) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import generate_uid

    ds = Dataset()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"  # Media Storage Directory Storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = EXPLICIT_VR_LITTLE_ENDIAN
    ds.file_meta = meta
    ds.FileSetID = "SAMPLE"
    ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = 0
    ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = 0
    ds.FileSetConsistencyFlag = 0
    ds.DirectoryRecordSequence = []
    ds.save_as(path, enforce_file_format=True)
