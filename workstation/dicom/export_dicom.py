"""`workstation export SERIES_UID DIR --format dicom [--deidentify]`: copy a series out as DICOM.

Files are written under new names (IMG0001.dcm ... in slice order) so a de-identified export
does not carry the original SOP Instance UIDs in its file names. Every file is first written
under a temporary name and only when all are written are they renamed into place, so an export
that fails leaves the folder as it was (with --overwrite too: files of an earlier export are
replaced only by a complete new one). A folder that is not empty is refused unless the caller
says to overwrite, so two series are never mixed in one folder by accident. Files of the
series that the store could not use are left out and named (`ExportResult.left_out`). Every
export, refused and failed ones too, is written to the store's audit log.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import dcmread

from workstation.dicom.net.deidentify import DeidentificationError, Deidentifier
from workstation.dicom.net.nodes import audit_entry, deidentification_secret, record_audit

SHOWN_ENTRIES = 3  # how many of a non-empty folder's entries the refusal names


class ExportError(RuntimeError):
    """An export that could not be completed; the message names the file and the reason."""


@dataclass
class ExportResult:
    """The files written, in slice order (the result reads as that list), and the series'
    files left out as unusable ((path, reason) from the index), which the user must be told
    about."""

    written: list[Path]
    left_out: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.written)

    def __iter__(self) -> Iterator[Path]:
        return iter(self.written)

    def __getitem__(self, index: int) -> Path:
        return self.written[index]


def series_paths(store_dir: Path, series_id: str) -> list[str]:
    """The files of a series (slice order, stack by stack) from the store's catalog."""
    from workstation.dicom.catalog import Catalog

    with Catalog(Path(store_dir)) as catalog:
        # A plain SeriesInstanceUID means the whole series: every stack of it ("UID#N" is one).
        stacks = [series_id]
        if "#" not in series_id:
            stacks += [s for s in catalog.stack_ids() if s.startswith(f"{series_id}#")]
        refs = [catalog.series_ref(s) for s in stacks]  # LookupError names an unknown series
    paths = list(dict.fromkeys(p for ref in refs for p in ref.paths))  # multi-frame files once
    if not paths:
        raise ExportError(f"series {series_id} has no files in the store")
    return paths


def unusable_files(store_dir: Path, series_id: str) -> list[tuple[str, str]]:
    """(path, reason) of the series' files the index could not use: they are not exported or
    sent, and the user is told how many were left out."""
    from workstation.dicom.catalog import Catalog

    uid = series_id.split("#", 1)[0]
    with Catalog(Path(store_dir)) as catalog:
        problems = [p for p in catalog.problems() if p["kind"] == "file"]
    # the index may not have read a broken file's series: its header says (few such files)
    return [
        (p["path"], p["reason"])
        for p in problems
        if (p["series_uid"] or _series_of(p["path"])) == uid
    ]


def _series_of(path: str) -> str:
    try:
        header = dcmread(path, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"])
    except Exception:  # unreadable: it cannot be told to belong to the series
        return ""
    return str(header.get("SeriesInstanceUID", ""))


def check_empty(out_dir: Path) -> None:
    """Raise ExportError naming the folder and what is in it when it is not empty."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise ExportError(f"{out_dir} exists and is not a folder")
    entries = sorted(p.name for p in out_dir.iterdir())
    if entries:
        shown = ", ".join(entries[:SHOWN_ENTRIES])
        more = f" and {len(entries) - SHOWN_ENTRIES} more" if len(entries) > SHOWN_ENTRIES else ""
        raise ExportError(
            f"{out_dir} is not empty ({len(entries)} item(s): {shown}{more}); export into an "
            "empty or new folder, or pass --overwrite to write into it anyway"
        )


def export_dicom(
    store_dir: Path,
    series_id: str,
    out_dir: Path,
    deidentify: bool = False,
    overwrite: bool = False,
) -> ExportResult:
    """Write the series' DICOM files into out_dir (de-identified if asked).

    out_dir must be empty or new unless `overwrite` (then files of the same name are
    replaced, once every new file is written, and other files are left alone). On failure
    nothing in out_dir changes.
    """
    store_dir, out_dir = Path(store_dir), Path(out_dir).absolute()
    deidentifier = Deidentifier(deidentification_secret(store_dir)) if deidentify else None
    written: list[Path] = []
    left_out: list[tuple[str, str]] = []
    created = not out_dir.exists()
    try:
        sources = series_paths(store_dir, series_id)
        left_out = unusable_files(store_dir, series_id)
        if not overwrite:
            check_empty(out_dir)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ExportError(f"{out_dir}: cannot create the folder: {error}") from None
        written = _write_all(sources, out_dir, deidentifier)
    except BaseException as error:
        if created:
            with contextlib.suppress(OSError):
                out_dir.rmdir()  # only when empty: the export made it
        _audit(
            store_dir,
            out_dir,
            series_id,
            0,
            deidentifier,
            "failed",
            str(error) or type(error).__name__,
        )
        raise
    note = f"{len(left_out)} unusable file(s) left out" if left_out else ""
    _audit(store_dir, out_dir, series_id, len(written), deidentifier, "ok", note)
    return ExportResult(written, left_out)


def _audit(
    store_dir: Path,
    out_dir: Path,
    series_id: str,
    count: int,
    deidentifier: Deidentifier | None,
    status: str,
    detail: str = "",
) -> None:
    record_audit(
        store_dir,
        audit_entry(
            "export",
            str(out_dir),
            [series_id],
            count,
            deidentifier is not None,
            status,
            detail,
            deidentifier.replacements() if deidentifier else None,
        ),
    )


def _write_all(sources: list[str], out_dir: Path, deidentifier: Deidentifier | None) -> list[Path]:
    """Every file under a temporary name first, then all renamed into place: a failure while
    writing leaves out_dir as it was."""
    targets = [out_dir / f"IMG{number:04d}.dcm" for number in range(1, len(sources) + 1)]
    temporaries: list[Path] = []
    try:
        for source, target in zip(sources, targets, strict=True):
            temporary = target.with_name(f".{target.name}.part")
            temporaries.append(temporary)
            _write_one(source, temporary, deidentifier)
        for temporary, target in zip(temporaries, targets, strict=True):
            os.replace(temporary, target)
    except OSError as error:
        raise ExportError(f"{out_dir}: {error}") from None
    finally:
        for temporary in temporaries:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
    return targets


def _write_one(source: str, temporary: Path, deidentifier: Deidentifier | None) -> None:
    try:
        if deidentifier is None:
            shutil.copyfile(source, temporary)
        else:
            dataset = dcmread(source)
            deidentifier.apply(dataset)
            dataset.save_as(temporary, enforce_file_format=True)
    except DeidentificationError as error:
        raise ExportError(f"{source}: cannot de-identify: {error}") from None
    except (OSError, ValueError) as error:
        raise ExportError(f"{source}: {error}") from None
