"""References to stored objects, so results can point back at what they were made from."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SeriesRef:
    """Which series (and which stack of it) a volume came from.

    `stack` is 0 for the only or first stack; a SeriesInstanceUID that holds several stacks
    (orientations, sizes, echoes) is split and each stack gets its own number. `instance_uids` are
    the SOP Instance UIDs in slice order, so DICOM writers can reference the exact source images.
    """

    series_uid: str
    study_uid: str = ""
    patient_id: str = ""
    stack: int = 0
    modality: str = ""
    sop_class_uid: str = ""
    instance_uids: tuple[str, ...] = field(default=(), repr=False)
    paths: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @property
    def stack_id(self) -> str:
        """The id users type: the series UID, with ``#N`` for stacks after the first."""
        return self.series_uid if self.stack == 0 else f"{self.series_uid}#{self.stack}"


@dataclass(frozen=True)
class PatientRef:
    """A patient as the radiologist knows them: the MRN that DICOM carries as PatientID."""

    patient_id: str
    name: str = ""
