"""Labelled data sets: a MONAI-style datalist JSON or an images/ + labels/ folder."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workstation.core.volume import Volume

DATALIST_KEYS = ("testing", "test", "validation")
NIFTI_SUFFIXES = (".nii.gz", ".nii")


class DatasetProblem(ValueError):
    """The data set, or one case in it, cannot be used; the message names the case and file."""


@dataclass(frozen=True)
class Case:
    """One evaluation case: an image (NIfTI file or DICOM folder) and its reference.

    `label` is a path (label map or reference image) or an integer class index.
    """

    index: int
    case_id: str
    image: Path
    label: Path | int

    def describe(self) -> str:
        return f"case {self.index + 1} ({self.case_id})"


def read_dataset(source: str | os.PathLike[str]) -> list[Case]:
    """The cases of a datalist JSON file, or of a folder with images/ and labels/."""
    path = Path(source)
    if not path.exists():
        raise DatasetProblem(f"{path}: no such data set file or folder")
    cases = _read_datalist(path) if path.is_file() else _read_folder(path)
    if not cases:
        raise DatasetProblem(f"{path}: the data set has no cases")
    return cases


def case_name(path: Path) -> str:
    name = path.name
    for suffix in NIFTI_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _read_datalist(path: Path) -> list[Case]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetProblem(f"{path}: not a readable JSON datalist: {error}") from error
    if not isinstance(document, dict):
        raise DatasetProblem(f"{path}: a datalist is a JSON object with a 'testing' list")
    key = next((k for k in DATALIST_KEYS if k in document), None)
    if key is None or not isinstance(document[key], list):
        raise DatasetProblem(
            f"{path}: no case list; expected one of {', '.join(repr(k) for k in DATALIST_KEYS)}"
        )
    base = path.parent
    cases = []
    for index, item in enumerate(document[key]):
        where = f"{path}: {key}[{index}]"
        if not isinstance(item, dict) or "image" not in item or "label" not in item:
            raise DatasetProblem(f"{where}: each case needs 'image' and 'label'")
        image = _resolve(base, item["image"], where)
        label = _parse_label(base, item["label"], where)
        cases.append(Case(index, str(item.get("id") or case_name(image)), image, label))
    return cases


def _resolve(base: Path, value: Any, where: str) -> Path:
    if not isinstance(value, str) or not value:
        raise DatasetProblem(f"{where}: expected a file path, got {value!r}")
    path = Path(value)
    return path if path.is_absolute() else base / path


def _parse_label(base: Path, value: Any, where: str) -> Path | int:
    if isinstance(value, bool):
        raise DatasetProblem(f"{where}: label must be a class index or a file path")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return _resolve(base, value, where)


def _read_folder(path: Path) -> list[Case]:
    images, labels = path / "images", path / "labels"
    if not images.is_dir() or not labels.is_dir():
        raise DatasetProblem(
            f"{path}: a data set folder needs images/ and labels/ (or give a datalist JSON file)"
        )
    files = sorted(p for p in images.iterdir() if p.name.endswith(NIFTI_SUFFIXES))
    return [
        Case(index, case_name(image), image, labels / image.name)
        for index, image in enumerate(files)
    ]


def read_volume(path: Path, case: Case, role: str, registry: Any = None) -> Volume:
    """A NIfTI file (nibabel) or a DICOM folder/file (the host's loader), with errors that say
    which case and which file."""
    if not path.exists():
        raise DatasetProblem(f"{case.describe()}: {role} {path}: no such file or folder")
    try:
        if path.name.endswith(NIFTI_SUFFIXES):
            import nibabel as nib

            return Volume.from_nifti(nib.load(str(path)))
        from workstation.plugins.inputs import from_path
        from workstation.plugins.manager import load_registry

        volume = from_path(path, registry if registry is not None else load_registry()).volume
    except DatasetProblem:
        raise
    except Exception as error:
        raise DatasetProblem(
            f"{case.describe()}: {role} {path}: cannot be read: {type(error).__name__}: {error}"
        ) from error
    if volume is None:
        raise DatasetProblem(f"{case.describe()}: {role} {path}: holds no image volume")
    return volume


def label_on_image_grid(label: Volume, image: Volume, case: Case) -> tuple[Volume, str | None]:
    """The label map on the image's grid: as is when the geometry matches, else resampled
    (nearest neighbour) with a note saying so. A label that misses the image is an error."""
    values = np.rint(label.array).astype(np.int32) if label.array.dtype.kind == "f" else label.array
    label = label.with_array(values.astype(np.int32))
    if label.geometry.is_close(image.geometry, tol_mm=1e-3):
        return label, None
    resampled = label.resample_to(image, order=0)
    if label.array.any() and not resampled.array.any():
        raise DatasetProblem(
            f"{case.describe()}: label {case.label}: its grid does not overlap the image "
            f"{case.image} (label shape {label.shape}, image shape {image.shape})"
        )
    note = (
        f"{case.describe()}: label {case.label} is on a different grid than the image "
        f"(label shape {label.shape} spacing {_mm(label.spacing)}, image shape {image.shape} "
        f"spacing {_mm(image.spacing)}); resampled onto the image grid (nearest neighbour)"
    )
    return resampled, note


def _mm(spacing: tuple[float, ...]) -> str:
    return "x".join(f"{s:g}" for s in spacing) + " mm"
