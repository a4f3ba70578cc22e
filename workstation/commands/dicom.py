"""`workstation index | ls | show | export`: the local DICOM index from the command line.

Nothing here logs patient data: names and IDs go to stdout only when the user lists the store.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from workstation.commands.common import fail, print_json, store_dir

EXPORT_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")


def register(subparsers: argparse._SubParsersAction) -> None:
    index = subparsers.add_parser(
        "index",
        help="index DICOM files into the store (incremental, parallel, bad files reported)",
        description="Index every file under PATH (recursively). Unchanged files are skipped; "
        "files that vanished are removed; bad files are recorded (see `ls --errors`).",
    )
    index.add_argument("paths", nargs="+", metavar="PATH", help="folder or file to index")
    index.add_argument(
        "--copy", action="store_true", help="copy the files into the store instead of linking"
    )
    index.add_argument("--json", action="store_true", help="print the summary as JSON")
    index.set_defaults(func=_index)

    listing = subparsers.add_parser(
        "ls", help="patients, studies and series in the store; --errors lists file problems"
    )
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.add_argument("--patient", metavar="ID", help="only this patient (PatientID)")
    listing.add_argument(
        "--errors", action="store_true", help="list every file problem with its path and reason"
    )
    listing.set_defaults(func=_ls)

    show = subparsers.add_parser("show", help="a series' geometry and warnings")
    show.add_argument("series_id", metavar="SERIES_UID", help="SeriesInstanceUID, or UID#N")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=_show)

    export = subparsers.add_parser(
        "export",
        help="write a series to .nii, .nii.gz, .nrrd or .mha (NIfTI in RAS), or as DICOM files",
    )
    export.add_argument("series_id", metavar="SERIES_UID", help="SeriesInstanceUID, or UID#N")
    export.add_argument(
        "out",
        metavar="OUT",
        help="output file (its suffix picks the format), or a DICOM folder",
    )
    export.add_argument(
        "--format",
        choices=("auto", "dicom"),
        default="auto",
        help="auto: from OUT's suffix; dicom: copy the series' DICOM files into the folder OUT",
    )
    export.add_argument(
        "--deidentify",
        action="store_true",
        help="with --format dicom: apply the DICOM PS3.15 basic confidentiality profile",
    )
    export.add_argument(
        "--overwrite",
        action="store_true",
        help="with --format dicom: write into a folder that is not empty (same names replaced)",
    )
    export.set_defaults(func=_export)


# --- index --------------------------------------------------------------------------------------
def _index(args: argparse.Namespace) -> int:
    from workstation.dicom.index import index_paths

    bar = _progress_bar()
    try:
        summary = index_paths(store_dir(args), args.paths, copy=args.copy, progress=bar)
    except FileNotFoundError as error:
        return fail(str(error))
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print_json(summary.as_dict())
    else:
        print(summary.line())
        if summary.problems:
            print("see `workstation ls --errors` for the problems", file=sys.stderr)
    return 0


class _TqdmProgress:
    """index_paths' progress callback drawn as a tqdm bar on stderr."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=0, unit="file", desc="indexing", file=sys.stderr, leave=False)

    def __call__(self, done: int, total: int) -> None:
        if self._bar.total != total:
            self._bar.total = total
            self._bar.refresh()
        self._bar.update(done - self._bar.n)  # tqdm redraws at most every 0.1 s

    def close(self) -> None:
        self._bar.close()


def _progress_bar() -> _TqdmProgress | None:
    """A bar on a terminal only: pipes and logs get just the summary line."""
    return _TqdmProgress() if sys.stderr.isatty() else None


# --- ls -----------------------------------------------------------------------------------------
def _dimensions(series: dict) -> str:
    """Rows x columns x slices; a SEG's frames are one per segment and slice, so it says frames
    (a 2-segment SEG over 32 slices holds 64 frames, not 64 slices)."""
    if series["modality"] == "SEG":
        return f"{series['rows']}x{series['columns']} ({series['frames']} frames)"
    return series["dimensions"]


def _ls(args: argparse.Namespace) -> int:
    from workstation.dicom.catalog import Catalog

    with Catalog(store_dir(args)) as catalog:
        if args.errors:
            problems = catalog.problems()
            if args.json:
                print_json(problems)
            elif not problems:
                print("no problems recorded")
            else:
                for p in problems:
                    print(f"{p['path']}: {p['reason']}")
            return 0
        tree = catalog.tree(patient_id=args.patient)
    if args.patient is not None and not tree:
        return fail(f"no patient {args.patient!r} in the store")
    if args.json:
        print_json(tree)
        return 0
    if not tree:
        print("the store is empty; add files with `workstation index PATH`")
    for patient in tree:
        print(f"{patient['patient_id']}  {patient['patient_name']}")
        for study in patient["studies"]:
            print(f"  study {study['study_uid']}  {study['date']}  {study['description']}")
            for s in study["series"]:
                flag = "  [synthetic]" if s["synthetic"] else ""
                print(
                    f"    {s['series_id']}  {s['modality']}  {_dimensions(s)}  "
                    f"{s['instances']} instances  {s['description']}{flag}"
                )
    return 0


# --- show ---------------------------------------------------------------------------------------
def describe_volume(series_id: str, volume: Any, problems: list[dict]) -> dict[str, Any]:
    """What `show` prints: the geometry and every warning about the stack."""
    geometry = volume.geometry
    shape = volume.shape
    return {
        "series_id": series_id,
        "size": [shape[2], shape[1], shape[0]],  # (x, y, z): columns, rows, slices
        "array_shape": list(shape),
        "dtype": str(volume.array.dtype),
        "spacing": list(volume.spacing),
        "origin": list(volume.origin),
        "direction": [list(row) for row in volume.direction],
        "orientation": geometry.orientation_label(),
        "modality": volume.source.modality if volume.source else "",
        "warnings": list(volume.warnings) + [p["reason"] for p in problems],
    }


def _show(args: argparse.Namespace) -> int:
    from workstation.dicom.catalog import Catalog, parse_series_id

    with Catalog(store_dir(args)) as catalog:
        try:
            volume = catalog.open_series(args.series_id)
        except Exception as error:
            return _load_failure(args.series_id, error)
        uid, _ = parse_series_id(args.series_id)
        problems = [
            p for p in catalog.problems() if p["series_uid"] == uid and p["kind"] != "duplicate"
        ]
    info = describe_volume(args.series_id, volume, problems)
    if args.json:
        print_json(info)
        return 0

    def fmt(values) -> str:
        return ", ".join(f"{v + 0.0:.4g}" for v in values)  # + 0.0: no "-0"

    print(f"series      {info['series_id']}")
    print(f"modality    {info['modality']}")
    print(f"size        {' x '.join(str(v) for v in info['size'])} (columns x rows x slices)")
    print(f"spacing     {fmt(info['spacing'])} mm")
    print(f"origin      {fmt(info['origin'])} (LPS mm)")
    print("direction   " + " | ".join(fmt(row) for row in info["direction"]))
    print(f"orientation {info['orientation']}")
    for warning in info["warnings"]:
        print(f"warning     {warning}")
    return 0


def _load_failure(series_id: str, error: Exception) -> int:
    from workstation.dicom.catalog import UnknownSeries
    from workstation.dicom.records import DicomProblem

    if isinstance(error, UnknownSeries):
        return fail(str(error))
    if isinstance(error, DicomProblem):
        return fail(f"cannot load series {series_id}: {error}")
    if isinstance(error, (ValueError, OSError)):
        return fail(f"cannot load series {series_id}: {error}")
    raise error


# --- export -------------------------------------------------------------------------------------
def _export(args: argparse.Namespace) -> int:
    from workstation.dicom.catalog import Catalog

    if args.format == "dicom":
        return _export_dicom(args)
    if args.deidentify:
        return fail("--deidentify applies to --format dicom (image formats carry no identity)")
    out = Path(args.out)
    suffix = next((s for s in EXPORT_SUFFIXES if out.name.lower().endswith(s)), None)
    if suffix is None:
        return fail(f"{out}: unknown format; use one of {', '.join(EXPORT_SUFFIXES)}")
    if not out.parent.exists():
        return fail(f"{out.parent}: no such folder")
    with Catalog(store_dir(args)) as catalog:
        try:
            volume = catalog.open_series(args.series_id)
        except Exception as error:
            return _load_failure(args.series_id, error)
    write_volume(volume, out, suffix)
    print(f"wrote {out}")
    return 0


def _export_dicom(args: argparse.Namespace) -> int:
    from workstation.dicom.export_dicom import ExportError, export_dicom

    try:
        result = export_dicom(
            store_dir(args), args.series_id, Path(args.out), args.deidentify, args.overwrite
        )
    except (ExportError, LookupError) as error:
        return fail(str(error))
    note = " (de-identified)" if args.deidentify else ""
    print(f"wrote {len(result.written)} DICOM file(s) to {args.out}{note}")
    if result.left_out:
        print(
            f"left out {len(result.left_out)} file(s) of the series that the store cannot use:",
            file=sys.stderr,
        )
        for path, reason in result.left_out:
            print(f"  {path}: {reason}", file=sys.stderr)
    return 0


def write_volume(volume: Any, out: Path, suffix: str) -> None:
    """Write atomically (temp file, then rename) so a failed export leaves no half file."""
    fd, temp = tempfile.mkstemp(dir=out.parent, prefix=".export-", suffix=suffix)
    os.close(fd)
    try:
        if suffix in (".nii", ".nii.gz"):
            volume.to_nifti().to_filename(temp)
        else:
            import SimpleITK as sitk

            sitk.WriteImage(volume.to_sitk(), temp, useCompression=suffix == ".nrrd")
        os.replace(temp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
