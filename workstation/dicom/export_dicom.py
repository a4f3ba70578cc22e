"""`workstation export SERIES_UID DIR --format dicom [--deidentify]`: copy a series out as DICOM.

Files are written under new names (IMG0001.dcm ... in slice order) so a de-identified export
does not carry the original SOP Instance UIDs in its file names. Each file is written under a
temporary name and renamed, so an interrupted export never leaves half a file. Every export is
written to the store's audit log.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pydicom import dcmread

from workstation.dicom.net.deidentify import DeidentificationError, Deidentifier
from workstation.dicom.net.nodes import audit_entry, deidentification_secret, record_audit


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


def export_dicom(
    store_dir: Path, series_id: str, out_dir: Path, deidentify: bool = False
) -> list[Path]:
    """Write the series' DICOM files into out_dir (de-identified if asked); returns the paths."""
    store_dir, out_dir = Path(store_dir), Path(out_dir)
    sources = series_paths(store_dir, series_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    deidentifier = Deidentifier(deidentification_secret(store_dir)) if deidentify else None
    written: list[Path] = []
    try:
        for number, source in enumerate(sources, start=1):
            target = out_dir / f"IMG{number:04d}.dcm"
            temporary = out_dir / f".{target.name}.part"
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
            written.append(target)
    except ExportError as error:
        record_audit(
            store_dir,
            audit_entry(
                "export", str(out_dir), [series_id], len(written), deidentify, "failed", str(error)
            ),
        )
        raise
    record_audit(
        store_dir,
        audit_entry("export", str(out_dir), [series_id], len(written), deidentify, "ok"),
    )
    return written
