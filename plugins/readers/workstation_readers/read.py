"""Reading NIfTI with nibabel and NRRD/MetaImage with SimpleITK into LPS `Volume`s.

NIfTI stores RAS coordinates; `Volume.from_nifti` converts them to LPS explicitly. ITK formats
are already LPS. Values are the file's values after its scaling (NIfTI scl_slope/scl_inter).
Every error names the file.
"""

from __future__ import annotations

from pathlib import Path

from workstation.plugins.api import Volume


class ReadError(ValueError):
    """The file cannot be read as a volume; the message names the file and why."""


def read_nifti(path: str) -> Volume:
    import nibabel as nib

    try:
        image = nib.load(path)
    except FileNotFoundError:
        raise ReadError(f"{path}: no such file") from None
    except Exception as error:
        raise ReadError(f"{path}: not a readable NIfTI file ({error})") from None
    try:
        volume = Volume.from_nifti(image)  # decodes the data: a truncated file fails here
    except Exception as error:
        raise ReadError(f"{path}: {error}") from None
    volume.metadata.update(_describe(path, "NIfTI"))
    return volume


def read_itk(path: str) -> Volume:
    import SimpleITK as sitk

    if not Path(path).is_file():
        raise ReadError(f"{path}: no such file")
    try:
        image = sitk.ReadImage(str(path))
    except Exception as error:
        first_line = str(error).strip().splitlines()[-1] if str(error).strip() else ""
        raise ReadError(f"{path}: not a readable NRRD/MetaImage file ({first_line})") from None
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ReadError(
            f"{path}: has {image.GetNumberOfComponentsPerPixel()} values per voxel; "
            "the workstation reads scalar volumes"
        )
    if image.GetDimension() == 2:
        image = sitk.JoinSeries(image)
    try:
        volume = Volume.from_sitk(image)
    except ValueError as error:
        raise ReadError(f"{path}: {error}") from None
    volume.metadata.update(
        _describe(path, "NRRD" if path.lower().endswith((".nrrd", ".nhdr")) else "MetaImage")
    )
    return volume


def _describe(path: str, kind: str) -> dict[str, str]:
    return {"format": kind, "description": Path(path).name}
