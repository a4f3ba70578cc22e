"""Declares the NIfTI and NRRD/MetaImage readers; the reading code loads only when a file of
that kind is opened."""

from __future__ import annotations

from workstation.plugins.api import ReaderSpec, hookimpl
from workstation_readers import __version__

WORKSTATION_PLUGIN_API = "1.0"


@hookimpl
def workstation_readers() -> list[ReaderSpec]:
    return [
        ReaderSpec(
            id="readers.nifti",
            title="NIfTI-1/2 volume",
            extensions=(".nii", ".nii.gz"),
            entry="workstation_readers.read:read_nifti",
            version=__version__,
        ),
        ReaderSpec(
            id="readers.itk",
            title="NRRD or MetaImage volume",
            extensions=(".nrrd", ".nhdr", ".mha", ".mhd"),
            entry="workstation_readers.read:read_itk",
            version=__version__,
        ),
    ]
