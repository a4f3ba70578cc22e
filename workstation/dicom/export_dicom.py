"""`workstation export SERIES_UID DIR --format dicom [--deidentify]`: copy a series out as DICOM.

Files are written under new names (IMG0001.dcm ... in slice order) so a de-identified export
does not carry the original SOP Instance UIDs in its file names. Each file is written under a
temporary name and renamed, so an interrupted export never leaves half a file; an export that
fails removes the files it wrote, so a folder never holds part of a series. A folder that is
not empty is refused unless the caller says to overwrite, so two series are never mixed in one
folder by accident. Every export, failed ones too, is written to the store's audit log.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from pydicom import dcmread

from workstation.dicom.net.deidentify import DeidentificationError, Deidentifier
from workstation.dicom.net.nodes import audit_entry, deidentification_secret, record_audit

SHOWN_ENTRIES = 3  # how many of a non-empty folder's entries the refusal names


class ExportError(RuntimeError):
    """An export that could not be completed; the message names the file and the reason."""


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
) -> list[Path]:
    """Write the series' DICOM files into out_dir (de-identified if asked); returns the paths.

    out_dir must be empty or new unless `overwrite` (then files of the same name are
    replaced and other files are left alone). On failure the files written are removed.
    """
    store_dir, out_dir = Path(store_dir), Path(out_dir).absolute()
    sources = series_paths(store_dir, series_id)
    if not overwrite:
        check_empty(out_dir)
    created = not out_dir.exists()
    deidentifier = Deidentifier(deidentification_secret(store_dir)) if deidentify else None
    written: list[Path] = []
    try:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ExportError(f"{out_dir}: cannot create the folder: {error}") from None
        for number, source in enumerate(sources, start=1):
            target = out_dir / f"IMG{number:04d}.dcm"
            _write_one(source, target, deidentifier)
            written.append(target)
    except BaseException as error:
        _remove(written, out_dir if created else None)
        detail = str(error) or type(error).__name__
        if written:
            detail += f" ({len(written)} file(s) written before, removed again)"
        record_audit(
            store_dir,
            audit_entry(
                "export",
                str(out_dir),
                [series_id],
                0,
                deidentify,
                "failed",
                detail,
                deidentifier.replacements() if deidentifier else None,
            ),
        )
        raise
    record_audit(
        store_dir,
        audit_entry(
            "export",
            str(out_dir),
            [series_id],
            len(written),
            deidentify,
            "ok",
            replacements=deidentifier.replacements() if deidentifier else None,
        ),
    )
    return written


def _write_one(source: str, target: Path, deidentifier: Deidentifier | None) -> None:
    temporary = target.with_name(f".{target.name}.part")
    try:
        if deidentifier is None:
            shutil.copyfile(source, temporary)
        else:
            dataset = dcmread(source)
            deidentifier.apply(dataset)
            dataset.save_as(temporary, enforce_file_format=True)
        os.replace(temporary, target)
    except DeidentificationError as error:
        raise ExportError(f"{source}: cannot de-identify: {error}") from None
    except (OSError, ValueError) as error:
        raise ExportError(f"{source}: {error}") from None
    finally:
        temporary.unlink(missing_ok=True)


def _remove(written: list[Path], created_dir: Path | None) -> None:
    """Take a failed export's files away again (and its folder, if the export made it)."""
    for path in written:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
    if created_dir is not None:
        with contextlib.suppress(OSError):
            created_dir.rmdir()  # only when empty
