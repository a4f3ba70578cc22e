"""Sending stored series to a node (C-STORE), optionally de-identified, always audited."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from workstation.dicom.net.deidentify import Deidentifier
from workstation.dicom.net.listener import DEFAULT_AE_TITLE
from workstation.dicom.net.nodes import (
    Node,
    audit_entry,
    deidentification_secret,
    record_audit,
)
from workstation.dicom.net.scu import Progress, SendReport, send_files


def send_series(
    store_dir: Path,
    node: Node,
    series_ids: Sequence[str],
    *,
    deidentify: bool = False,
    ae_title: str = DEFAULT_AE_TITLE,
    progress: Progress | None = None,
) -> SendReport:
    """C-STORE every file of the series to the node; de-identified copies if asked (the stored
    files are never changed). The send is written to the audit log, whatever its outcome, with
    the replacement study and series UIDs of a de-identified send. Files of the series that the
    index could not use are not sent; the report lists them (`left_out`)."""
    # export_dicom imports this package (de-identification, audit): import it when called
    from workstation.dicom.export_dicom import series_paths, unusable_files

    store_dir = Path(store_dir)
    paths = [path for series_id in series_ids for path in series_paths(store_dir, series_id)]
    left_out = [item for series_id in series_ids for item in unusable_files(store_dir, series_id)]
    transform = Deidentifier(deidentification_secret(store_dir)) if deidentify else None
    destination = f"{node.name} ({node.ae_title}@{node.host}:{node.port})"

    def replacements() -> dict[str, list[str]] | None:
        return transform.replacements() if transform is not None else None

    try:
        report = send_files(node, paths, transform=transform, ae_title=ae_title, progress=progress)
    except Exception as error:
        record_audit(
            store_dir,
            audit_entry(
                "send",
                destination,
                list(series_ids),
                0,
                deidentify,
                "failed",
                str(error),
                replacements(),
            ),
        )
        raise
    report.left_out = left_out
    report.replacements = replacements() or {}
    outcome = "ok" if not report.failed else ("partial" if report.sent else "failed")
    notes = []
    if report.failed:
        notes.append(f"{len(report.failed)} file(s) not sent")
    if left_out:
        notes.append(f"{len(left_out)} unusable file(s) left out")
    record_audit(
        store_dir,
        audit_entry(
            "send",
            destination,
            list(series_ids),
            len(report.sent),
            deidentify,
            outcome,
            "; ".join(notes),
            replacements(),
        ),
    )
    return report
