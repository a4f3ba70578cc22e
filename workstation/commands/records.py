"""`workstation records ...`: import FHIR or CSV records, list patients, show one, synthesize."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from workstation.commands.common import fail, print_json, store_dir

TEXT_VALUES_PER_CODE = 10


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("records", help="patient records: FHIR R4 import, list, show")
    commands = parser.add_subparsers(dest="records_command", metavar="ACTION", required=True)

    importer = commands.add_parser(
        "import", help="import FHIR bundles, NDJSON, CSV lab tables or folders of them"
    )
    importer.add_argument("paths", nargs="+", metavar="PATH")
    importer.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help="CSV column mapping, e.g. patient=MRN time=collected (fields: patient, time, code, "
        "value, unit, display, system=CODE_SYSTEM_URL)",
    )
    importer.add_argument("--json", action="store_true", help="print the summary as JSON")
    importer.set_defaults(func=_import)

    lister = commands.add_parser("ls", help="patients with record counts and linked imaging")
    lister.add_argument("--json", action="store_true")
    _link_options(lister)
    lister.set_defaults(func=_ls)

    show = commands.add_parser("show", help="one patient's records")
    show.add_argument("patient", metavar="PATIENT_ID", help="MRN (DICOM PatientID) or FHIR id")
    show.add_argument("--json", action="store_true")
    show.add_argument(
        "--code", action="append", metavar="CODE", help="only this observation code (repeatable)"
    )
    show.add_argument("--since", metavar="DATE", help="only from this date (YYYY[-MM[-DD]])")
    _link_options(show)
    show.set_defaults(func=_show)

    synth = commands.add_parser(
        "synth", help="write synthetic Synthea-shaped FHIR bundles with a documented risk"
    )
    synth.add_argument("--patients", type=int, required=True, metavar="N")
    synth.add_argument("--seed", type=int, default=0, metavar="S")
    synth.add_argument("--out", required=True, metavar="DIR")
    synth.set_defaults(func=_synth)


def _link_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--match-type",
        action="append",
        metavar="CODE",
        help="identifier type (v2-0203) that links to DICOM PatientID (default MR; repeatable)",
    )
    parser.add_argument(
        "--match-system",
        action="append",
        metavar="URL",
        help="identifier system that links to DICOM PatientID (repeatable)",
    )


def _store(args: argparse.Namespace):
    from workstation.records import LinkRule, RecordsStore

    rule = LinkRule.from_options(args.match_type, args.match_system)
    return RecordsStore(store_dir(args), rule)


def _import(args: argparse.Namespace) -> int:
    from workstation.records import CsvMapping, import_paths

    try:
        mapping = CsvMapping.from_pairs(args.column)
    except ValueError as error:
        return fail(str(error), 2)
    summary = import_paths(store_dir(args), args.paths, csv_mapping=mapping)
    if args.json:
        print_json(summary.to_dict())
    else:
        for result in summary.files:
            if result.error:
                print(f"{result.path}: not imported: {result.error}", file=sys.stderr)
                continue
            ignored = ", ".join(f"{k} {v}" for k, v in sorted(result.ignored.items()))
            print(
                f"{result.path}: {result.added} added, {result.updated} updated, "
                f"{result.unchanged} unchanged, {result.failed} failed"
                + (f"; not kept: {ignored}" if ignored else "")
            )
            for problem in result.problems:
                print(f"  {problem.severity}: {problem}", file=sys.stderr)
            if result.more_problems:
                print(f"  ... and {result.more_problems} more problems", file=sys.stderr)
        for path in summary.skipped:
            print(f"{path}: skipped: not .json, .ndjson, .jsonl or .csv", file=sys.stderr)
        for problem in summary.dangling:
            print(f"  warning: {problem}", file=sys.stderr)
        print(
            f"records: {summary.total('added')} added, {summary.total('updated')} updated, "
            f"{summary.total('unchanged')} unchanged, {summary.total('failed')} failed "
            f"from {len(summary.files)} files"
        )
    refused = any(r.error or r.failed for r in summary.files)
    return 1 if refused else 0


def _ls(args: argparse.Namespace) -> int:
    with _store(args) as store:
        patients = store.patients()
    if args.json:
        print_json(patients)
        return 0
    if not patients:
        print("no records patients; import some with `workstation records import PATH`")
        return 0
    for p in patients:
        counts = ", ".join(f"{v} {k}" for k, v in sorted(p["counts"].items()))
        imaging = ", ".join(p["imaging_patient_ids"]) or "none"
        mark = " [synthetic]" if p["synthetic"] else ""
        print(
            f"{', '.join(p['identifiers']) or p['patient_id']}  {p['name']}{mark}  "
            f"{p['sex']} {p['birth_date']}  ({counts or 'no resources'}; imaging: {imaging})"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    from workstation.records import PatientNotFound
    from workstation.records.dates import DateProblem

    with _store(args) as store:
        try:
            record = store.record(args.patient, codes=args.code, since=args.since)
        except PatientNotFound as error:
            return fail(str(error))
        except DateProblem as error:
            return fail(f"--since: {error}", 2)
    if args.json:
        print_json(record)
    else:
        _print_record(record, all_values=bool(args.code))
    return 0


def _print_record(record: dict[str, Any], all_values: bool) -> None:
    p = record["patient"]
    mark = "  [synthetic]" if p["synthetic"] else ""
    print(f"{p['given']} {p['family']}{mark}  {p['sex']}  born {p['birth_date'] or '?'}")
    print(f"  FHIR id {p['patient_id']}")
    for identifier in p["identifiers"]:
        kind = identifier["type_code"] or "id"
        print(f"  {kind:4} {identifier['value']}  ({identifier['system']})")
    for title, key in (
        ("Conditions", "conditions"),
        ("Medications", "medications"),
        ("Allergies", "allergies"),
        ("Procedures", "procedures"),
    ):
        items = record[key]
        if not items:
            continue
        print(f"{title}:")
        for item in items:
            start = item.get("start") or item.get("time") or "?"
            end = item.get("end")
            when = (
                f"{start[:10]} - {end[:10] if end else 'ongoing'}"
                if "start" in item
                else start[:10]
            )
            print(f"  {when}  {item['display'] or item['code']} [{item['code']}] {item['status']}")
    print(f"Encounters: {len(record['encounters'])}, reports: {len(record['reports'])}")
    if record["observations"]:
        print("Observations:")
    for obs in record["observations"]:
        flags = f"; mixed units {', '.join(obs['units_seen'])}" if obs["mixed_units"] else ""
        unit = obs["unit"] or "-"
        name = obs["display"] or obs["code"]
        print(f"  {name} [{obs['code']}] ({unit}, {obs['count']} values{flags})")
        values = obs["values"] if all_values else obs["values"][-TEXT_VALUES_PER_CODE:]
        if len(values) < obs["count"]:
            print(f"    ... {obs['count'] - len(values)} earlier (use --code {obs['code']})")
        for value in values:
            shown = value["text"] if value["value"] is None else f"{value['value']:g}"
            print(f"    {value['time']}  {shown}")
        for unit_name, other in obs["unconverted"].items():
            print(f"    {other['count']} values in {unit_name} not convertible to {unit}")
    if record["imaging_studies"] or record["linked_imaging"]:
        print("Imaging:")
    for study in record["imaging_studies"]:
        state = "indexed" if study["indexed"] else "not indexed"
        print(
            f"  {(study['started'] or '?')[:10]}  {study['modalities']} {study['description']}  "
            f"{study['study_uid']} ({state})"
        )
    known = {s["study_uid"] for s in record["imaging_studies"]}
    for study in record["linked_imaging"]:
        if study["study_uid"] not in known:
            print(
                f"  {study['study_date'] or '?'}  {study['description']}  {study['study_uid']} "
                f"(indexed, PatientID {study['dicom_patient_id']})"
            )


def _synth(args: argparse.Namespace) -> int:
    from workstation.records.synth import write_bundles

    if args.patients < 1:
        return fail("--patients must be at least 1", 2)
    truths = write_bundles(args.out, args.patients, args.seed)
    outcomes = sum(t.outcome for t in truths)
    print(
        f"wrote {len(truths)} synthetic patient bundles to {args.out} "
        f"({outcomes} with the outcome; ground truth in outcomes.tsv)"
    )
    return 0
