"""Turning what the user pointed at (an indexed series, a file, a folder, a patient) into
`AnalysisInputs`. Shared by `workstation run` and the GUI; every error names what was given."""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path
from typing import Any

from workstation.core.volume import Volume
from workstation.plugins.context import AnalysisInputs
from workstation.plugins.declarations import resolve_entry
from workstation.plugins.errors import UserFacingError
from workstation.plugins.manager import Registry


class InputProblem(UserFacingError, ValueError):
    """The input could not be loaded; the message names the series, file or patient."""


def from_series(store_dir: str | os.PathLike[str], series_id: str) -> AnalysisInputs:
    """An indexed series ("UID" or "UID#N") from the store's catalog."""
    try:
        from workstation.dicom.catalog import Catalog
    except ImportError as error:
        raise InputProblem(f"the DICOM catalog is unavailable: {error}") from None
    try:
        with Catalog(store_dir) as catalog:
            ref = catalog.series_ref(series_id)
            volume = catalog.open_series(series_id)
    except LookupError as error:
        raise InputProblem(
            f"series {series_id}: not in the store at {store_dir} ({error})"
        ) from None
    except Exception as error:
        raise InputProblem(f"series {series_id}: {error}") from None
    return AnalysisInputs(
        volume=volume, series=volume.source or ref, patient_id=ref.patient_id or None
    )


def from_path(path: str | os.PathLike[str], registry: Registry) -> AnalysisInputs:
    """A file read by a reader plugin (by extension), or a DICOM folder/file."""
    path = Path(path)
    if not path.exists():
        raise InputProblem(f"{path}: no such file or folder")
    if path.is_file():
        reader = registry.reader_for(path)
        if reader is not None:
            return AnalysisInputs(volume=_read_with(reader.spec.entry, path), source_path=str(path))
        if not _looks_like_dicom(path):
            known = sorted({ext for r in registry.readers for ext in r.spec.extensions})
            raise InputProblem(
                f"{path}: no reader for this file; readers installed for: "
                f"{', '.join(known) or 'none'} (and DICOM files or folders)"
            )
    volume = _read_dicom(path)
    return AnalysisInputs(
        volume=volume,
        series=volume.source,
        patient_id=(volume.source.patient_id or None) if volume.source else None,
        source_path=str(path),
    )


def with_patient(
    inputs: AnalysisInputs, store_dir: str | os.PathLike[str], patient_id: str
) -> AnalysisInputs:
    """Add a patient: the id, and a loader for their records called only if the analysis asks.
    An id the records store does not know is refused here, before any work starts."""
    _check_patient_known(store_dir, patient_id)
    inputs.patient_id = patient_id
    inputs.records = functools.partial(load_patient_records, str(store_dir), patient_id)
    return inputs


def _check_patient_known(store_dir: str | os.PathLike[str], patient_id: str) -> None:
    try:
        from workstation.records.store import PatientNotFound, RecordsStore
    except ImportError as error:
        raise InputProblem(f"patient records are unavailable: {error}") from None
    with RecordsStore(store_dir) as records:
        try:
            records.find_patient(patient_id)
        except PatientNotFound as error:
            raise InputProblem(
                f"patient {patient_id}: {error} (`workstation records ls` lists the patients)"
            ) from None


def load_patient_records(store_dir: str, patient_id: str) -> Any:
    """The patient's records (a `workstation.records` Timeline) from the records area."""
    try:
        from workstation.records.store import load_patient_records as load
    except ImportError as error:
        raise InputProblem(f"patient records are unavailable: {error}") from None
    return load(store_dir, patient_id)


def _read_with(entry: str, path: Path) -> Volume:
    try:
        volume = resolve_entry(entry)(str(path))
    except Exception as error:
        raise InputProblem(f"{path}: {type(error).__name__}: {error}") from None
    if not isinstance(volume, Volume):
        raise InputProblem(f"{path}: reader {entry} returned {type(volume).__name__}, not a Volume")
    return volume


def _read_dicom(path: Path) -> Volume:
    """Index the folder into a throw-away store (nothing is added to the user's) and open its
    one series; several series are an error listing them."""
    try:
        from workstation.dicom.catalog import Catalog
        from workstation.dicom.index import index_paths
    except ImportError as error:
        raise InputProblem(f"{path}: DICOM reading is unavailable: {error}") from None
    with tempfile.TemporaryDirectory(prefix="workstation-input-") as scratch:
        try:
            index_paths(scratch, [path])
            with Catalog(scratch) as catalog:
                stacks = catalog.stack_ids()
                if not stacks:
                    problems = "; ".join(str(p.get("message", p)) for p in catalog.problems()[:3])
                    raise InputProblem(
                        f"{path}: no readable DICOM image series"
                        + (f": {problems}" if problems else "")
                    )
                if len(stacks) > 1:
                    raise InputProblem(
                        f"{path}: holds {len(stacks)} series/stacks ({', '.join(stacks[:5])}); "
                        "index it with `workstation index` and choose one with --series"
                    )
                return catalog.open_series(stacks[0])
        except InputProblem:
            raise
        except Exception as error:
            raise InputProblem(f"{path}: {type(error).__name__}: {error}") from None


def _looks_like_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False
