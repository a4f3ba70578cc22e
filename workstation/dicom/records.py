"""What indexing learns from a DICOM header, kept so a series loads without re-reading headers.

The unit is a frame: one 2-D image. A classic single-frame file holds one; an enhanced multi-frame
file holds many, each with its own position, orientation and rescale from the per-frame functional
groups. `headers.read_header` produces these; the store keeps them; `loader` turns a stack of them
into a `Volume`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FrameRecord:
    """One 2-D image and everything needed to place it and read its pixels."""

    path: str
    frame_index: int  # 0-based frame inside the file
    sop_instance_uid: str
    sop_class_uid: str
    series_uid: str
    study_uid: str
    rows: int
    columns: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int  # 0 unsigned, 1 signed
    samples_per_pixel: int
    photometric: str  # MONOCHROME1, MONOCHROME2, RGB, YBR_FULL, ...
    planar_configuration: int
    transfer_syntax_uid: str
    number_of_frames: int
    # Byte offset of the native (uncompressed, little endian) pixel data value in the file, or None
    # when pixels are encapsulated, big endian or deflated and need pydicom to decode them.
    pixel_data_offset: int | None
    position: tuple[float, float, float] | None  # ImagePositionPatient, LPS mm
    orientation: tuple[float, float, float, float, float, float] | None  # row then column cosines
    pixel_spacing: tuple[float, float] | None  # (row spacing, column spacing) mm
    slice_thickness: float | None = None
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    pixel_padding_value: int | None = None
    window_center: float | None = None
    window_width: float | None = None
    instance_number: int | None = None
    modality: str = ""
    # Attributes that split one SeriesInstanceUID into separate stacks when they differ:
    # orientation, size, echo, temporal position, acquisition (for multi-stack localisers).
    stack_key: str = ""
    units: str = ""  # e.g. "HU" for CT after rescale


@dataclass(frozen=True)
class InstanceHeader:
    """One file: its identity and descriptive attributes, plus its frames."""

    path: str
    size: int
    mtime_ns: int
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    patient_id: str
    patient_name: str
    patient_birth_date: str
    patient_sex: str
    study_uid: str
    study_date: str
    study_time: str
    study_description: str
    accession_number: str
    series_uid: str
    series_number: int | None
    series_description: str
    modality: str
    image_type: tuple[str, ...] = ()
    frames: tuple[FrameRecord, ...] = field(default=(), repr=False)
    warnings: tuple[str, ...] = ()

    @property
    def synthetic(self) -> bool:
        """Marked synthetic by whoever made it (generated series say so in the description)."""
        return "SYNTHETIC" in self.series_description.upper()


class DicomProblem(Exception):
    """A file that cannot be indexed or loaded; the message names the file and the reason."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
