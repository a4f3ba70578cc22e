"""What `workstation view` and the window open: a series from the store by id, a DICOM folder or
file, a NIfTI image; and overlays from a run folder, a DICOM SEG or a NIfTI label map.

Errors name the path and the problem (`ViewerInputError`), so the command prints one line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from workstation.core.results import HeatMap, Label, LabelMap, Result
from workstation.core.volume import Volume
from workstation.plugins.worker import unnamed_label_name

NIFTI_SUFFIXES = (".nii", ".nii.gz")


class ViewerInputError(ValueError):
    """Something the user asked to open cannot be shown; the message names it."""


def is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(NIFTI_SUFFIXES)


def open_target(target: str, store_dir: str | os.PathLike[str]) -> tuple[Volume, dict[str, Any]]:
    """A series id in the store, or a path (DICOM folder or file, NIfTI file)."""
    path = Path(target)
    if path.exists():
        return open_path(path)
    from workstation.dicom.catalog import Catalog, UnknownSeries

    try:
        with Catalog(store_dir) as catalog:
            volume = catalog.open_series(target)
            return volume, series_info(catalog, target)
    except UnknownSeries as error:
        raise ViewerInputError(f"{target}: not a file or folder, and {error}") from None


def series_info(catalog: Any, series_id: str) -> dict[str, Any]:
    """Patient, study and series text for the corner annotations, from the catalog's tree."""
    ref = catalog.series_ref(series_id)
    for patient in catalog.tree(ref.patient_id):
        for study in patient["studies"]:
            for series in study["series"]:
                if series["series_id"] == series_id:
                    return {
                        "patient_name": patient["patient_name"],
                        "patient_id": patient["patient_id"],
                        "birth_date": patient["birth_date"],
                        "study_description": study["description"],
                        "study_date": study["date"],
                        "series_description": series["description"],
                        "modality": series["modality"],
                        "synthetic": series["synthetic"],
                    }
    return {}


def open_path(path: Path) -> tuple[Volume, dict[str, Any]]:
    if is_nifti(path):
        return open_nifti(path), {"series_description": path.name, "path": str(path.resolve())}
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    if not files:
        raise ViewerInputError(f"{path}: the folder holds no files")
    from workstation.dicom.headers import read_header
    from workstation.dicom.loader import load_frames
    from workstation.dicom.records import DicomProblem
    from workstation.dicom.stacks import group_stacks

    frames = []
    problems = []
    info: dict[str, Any] = {}
    for file in files:
        try:
            header = read_header(file)
        except DicomProblem as error:
            problems.append(str(error))
            continue
        frames.extend(header.frames)
        if not info:
            info = _header_info(header)
    if not frames:
        detail = problems[0] if problems else "no DICOM images"
        raise ViewerInputError(f"{path}: nothing to show ({detail})")
    stacks = group_stacks(frames)
    volume = load_frames(max(stacks, key=len))
    volume.warnings.extend(problems)
    if len(stacks) > 1:
        volume.warnings.append(f"{path}: {len(stacks)} stacks; showing the largest")
    return volume, info


def _header_info(header: Any) -> dict[str, Any]:
    return {
        "patient_name": header.patient_name,
        "patient_id": header.patient_id,
        "birth_date": header.patient_birth_date,
        "study_description": header.study_description,
        "study_date": header.study_date,
        "series_description": header.series_description,
        "modality": header.modality,
        "synthetic": bool(header.synthetic),
    }


def open_nifti(path: Path) -> Volume:
    import nibabel as nib

    try:
        image = nib.load(str(path))
        return Volume.from_nifti(image, metadata={"description": path.name})
    except (OSError, ValueError, nib.filebasedimages.ImageFileError) as error:
        raise ViewerInputError(f"{path}: cannot read as NIfTI ({error})") from None


def load_overlay(path: str | os.PathLike[str]) -> list[Result]:
    """Overlay results from a run folder (its NIfTI label maps and heat maps), a DICOM SEG or a
    NIfTI file (a label map when integer or when a ``.labels.json`` table sits beside it)."""
    path = Path(path)
    if not path.exists():
        raise ViewerInputError(f"{path}: no such file or folder")
    if path.is_dir():
        files = _run_folder_overlays(path)
        if files is None:  # not a run folder: every NIfTI in it
            files = [(f, None, {}) for f in sorted(path.rglob("*")) if is_nifti(f)]
        results = [_nifti_result(f, kind, shown) for f, kind, shown in files]
        if not results:
            raise ViewerInputError(f"{path}: the run folder has no label or heat maps")
        return results
    if is_nifti(path):
        return [_nifti_result(path)]
    return [_seg_result(path)]


def _run_folder_overlays(folder: Path) -> list[tuple[Path, str, dict]] | None:
    """The label and heat maps a run folder's run.json lists, with their result kinds and how
    the run showed them (a heat map's colormap, value_range, units); None when the folder has
    no run.json. Derived volumes and other results are not overlays."""
    manifest = folder / "run.json"
    if not manifest.exists():
        return None
    try:
        data = json.loads(manifest.read_text())
        kinds = {r["name"]: r["kind"] for r in data.get("results", [])}
        shown = {r["name"]: r for r in data.get("results", [])}
        outputs = data.get("outputs", [])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ViewerInputError(f"{manifest}: not a readable run manifest ({error})") from None
    found = []
    for output in outputs:
        kind = kinds.get(output.get("result", ""))
        target = folder / str(output.get("path", ""))
        if kind in ("label_map", "heat_map") and is_nifti(target):
            found.append((target, kind, shown.get(output.get("result", ""), {})))
    return found


def _nifti_result(path: Path, kind: str | None = None, shown: dict | None = None) -> Result:
    volume = open_nifti(path)
    stem = path.name[: -len(".nii.gz")] if path.name.lower().endswith(".gz") else path.stem
    table = path.with_name(f"{stem}.labels.json")
    as_labels = table.exists() or np.issubdtype(volume.array.dtype, np.integer)
    if kind == "label_map" or (kind is None and as_labels):
        labels = _label_table(table) if table.exists() else []
        values = {label.value for label in labels}
        array = (
            np.rint(volume.array).astype(np.int32)
            if volume.array.dtype.kind == "f"
            else volume.array
        )
        extra = [int(v) for v in np.unique(array) if v > 0 and int(v) not in values]
        labels += [
            Label(v, unnamed_label_name(v), _palette(len(labels) + n)) for n, v in enumerate(extra)
        ]
        return LabelMap(name=stem, volume=volume.with_array(array), labels=labels)
    shown = shown or {}
    value_range = shown.get("value_range")
    return HeatMap(
        name=stem,
        volume=volume.with_array(volume.array.astype(np.float32)),
        value_range=tuple(value_range) if value_range and len(value_range) == 2 else None,
        units=str(shown.get("units") or ""),
        colormap=str(shown.get("colormap") or "inferno"),
    )


def _label_table(path: Path) -> list[Label]:
    try:
        data = json.loads(path.read_text())
        return [
            Label(int(e["value"]), str(e["name"]), tuple(e.get("color") or _palette(n)))
            for n, e in enumerate(data["labels"])
        ]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ViewerInputError(f"{path}: not a label table ({error})") from None


def _palette(n: int) -> tuple[int, int, int]:
    colours = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48)]
    return colours[n % len(colours)]


def _seg_result(path: Path) -> LabelMap:
    """A DICOM SEG as a label map: segment n becomes label n, on the SEG's own grid."""
    try:
        import highdicom as hd

        seg = hd.seg.segread(str(path))
        hd_volume = seg.get_volume(combine_segments=True, relabel=True)
    except Exception as error:  # highdicom raises many kinds for files that are not SEG
        raise ViewerInputError(f"{path}: cannot read as DICOM SEG ({error})") from None
    affine = np.asarray(hd_volume.affine, dtype=float)  # (slice, row, column) index -> LPS
    array = np.asarray(hd_volume.array)
    linear = affine[:3, :3][:, ::-1]  # columns for (column, row, slice)
    spacing = np.linalg.norm(linear, axis=0)
    volume = Volume(array.astype(np.int32), tuple(spacing), tuple(affine[:3, 3]), linear / spacing)
    labels = [
        Label(int(d.segment_number), str(d.segment_label), _palette(n))
        for n, d in enumerate(seg.SegmentSequence)
    ]
    return LabelMap(name=path.stem, volume=volume, labels=labels)
