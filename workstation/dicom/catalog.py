"""What the store holds, for the browser, the CLI and plugins: patients -> studies -> stacks.

A SeriesInstanceUID that holds several stacks (orientations, sizes, echoes) is listed as separate
stacks with ids "UID", "UID#1", "UID#2", ... (`SeriesRef.stack_id`). Opening one reads its frame
records from the store (headers are never re-read) and hands them to the loader.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from workstation.core.refs import SeriesRef
from workstation.core.volume import Volume
from workstation.dicom.index import open_index
from workstation.dicom.index_series import series_frames, split_stacks
from workstation.dicom.records import DicomProblem, FrameRecord


class UnknownSeries(LookupError):
    """A series id that is not in the store."""

    def __init__(self, series_id: str) -> None:
        super().__init__(f"no series {series_id!r} in the store (see `workstation ls`)")
        self.series_id = series_id


def parse_series_id(series_id: str) -> tuple[str, int]:
    """ "UID" -> (UID, 0); "UID#2" -> (UID, 2)."""
    uid, sep, number = series_id.strip().partition("#")
    if not sep:
        return uid, 0
    if not number.isdigit():
        raise UnknownSeries(series_id)
    return uid, int(number)


class Catalog:
    """Read-only queries over the dicom index in the store at `store_dir`."""

    def __init__(self, store_dir: str | os.PathLike[str]) -> None:
        self.store_dir = Path(store_dir)
        self._db = open_index(self.store_dir)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- listing ---------------------------------------------------------------------------
    def tree(self, patient_id: str | None = None) -> list[dict[str, Any]]:
        """Patients -> studies -> stacks, each stack with modality, description, dimensions
        (rows x columns x slices), instance and frame counts and the synthetic flag."""
        where, params = "", ()
        if patient_id is not None:
            where, params = "WHERE p.patient_id = ?", (patient_id,)
        rows = self._db.query(
            "SELECT p.patient_id, p.patient_name, p.birth_date, p.sex, st.study_uid, "
            "st.study_date, st.study_time, st.description AS study_description, "
            "st.accession_number, se.series_uid, se.series_number, se.modality, "
            "se.description, se.synthetic, se.instance_count, se.frame_count, k.stack, k.rows, "
            "k.columns, k.slices, k.instances FROM dicom_patients p "
            "JOIN dicom_studies st ON st.patient_id = p.patient_id "
            "JOIN dicom_series se ON se.study_uid = st.study_uid "
            "JOIN dicom_stacks k ON k.series_uid = se.series_uid "
            f"{where} ORDER BY p.patient_id, st.study_date, st.study_time, st.study_uid, "
            "se.series_number, se.series_uid, k.stack",
            params,
        )
        patients: dict[str, dict[str, Any]] = {}
        studies: dict[str, dict[str, Any]] = {}
        for r in rows:
            patient = patients.setdefault(
                r["patient_id"],
                {
                    "patient_id": r["patient_id"],
                    "patient_name": r["patient_name"],
                    "birth_date": r["birth_date"],
                    "sex": r["sex"],
                    "studies": [],
                },
            )
            study = studies.get(r["study_uid"])
            if study is None:
                study = studies[r["study_uid"]] = {
                    "study_uid": r["study_uid"],
                    "date": r["study_date"],
                    "time": r["study_time"],
                    "description": r["study_description"],
                    "accession_number": r["accession_number"],
                    "series": [],
                }
                patient["studies"].append(study)
            ref = SeriesRef(r["series_uid"], stack=r["stack"])
            study["series"].append(
                {
                    "series_id": ref.stack_id,
                    "series_uid": r["series_uid"],
                    "stack": r["stack"],
                    "series_number": r["series_number"],
                    "modality": r["modality"],
                    "description": r["description"],
                    "rows": r["rows"],
                    "columns": r["columns"],
                    "slices": r["slices"],
                    "dimensions": f"{r['rows']}x{r['columns']}x{r['slices']}",
                    "instances": r["instances"],
                    "frames": r["slices"],
                    "series_instances": r["instance_count"],
                    "synthetic": bool(r["synthetic"]),
                }
            )
        return list(patients.values())

    def problems(self) -> list[dict[str, Any]]:
        """Every recorded problem: path, kind (file, duplicate, warning, series), reason, when."""
        return [
            {
                "path": r["path"],
                "kind": r["kind"],
                "reason": r["reason"],
                "series_uid": r["series_uid"],
                "detected_at": r["detected_at"],
            }
            for r in self._db.query(
                "SELECT path, kind, reason, series_uid, detected_at FROM dicom_problems "
                "ORDER BY path, id"
            )
        ]

    def stack_ids(self) -> list[str]:
        """Every openable stack id in the store."""
        return [
            SeriesRef(r["series_uid"], stack=r["stack"]).stack_id
            for r in self._db.query("SELECT series_uid, stack FROM dicom_stacks ORDER BY 1, 2")
        ]

    # --- one series ------------------------------------------------------------------------
    def stack_frames(self, series_id: str) -> list[FrameRecord]:
        """The stored frame records of one stack, as the loader wants them."""
        uid, number = parse_series_id(series_id)
        frames = series_frames(self._db, uid)
        if not frames:
            raise UnknownSeries(series_id)
        stacks = split_stacks(frames)
        if number >= len(stacks):
            raise UnknownSeries(series_id)
        return stacks[number]

    def series_ref(self, series_id: str) -> SeriesRef:
        """A reference to the stack: UIDs, patient, modality, and its instances in store order."""
        uid, number = parse_series_id(series_id)
        frames = self.stack_frames(series_id)
        info = self._db.query(
            "SELECT se.modality, st.study_uid, st.patient_id FROM dicom_series se "
            "JOIN dicom_studies st ON st.study_uid = se.study_uid WHERE se.series_uid = ?",
            (uid,),
        )
        row = info[0]
        sops = tuple(dict.fromkeys(f.sop_instance_uid for f in frames))
        return SeriesRef(
            series_uid=uid,
            study_uid=row["study_uid"],
            patient_id=row["patient_id"],
            stack=number,
            modality=row["modality"],
            sop_class_uid=frames[0].sop_class_uid,
            instance_uids=sops,
            paths=tuple(dict.fromkeys(f.path for f in frames)),
        )

    def open_series(self, series_id: str) -> Volume:
        """Load a stack as a Volume; a file that vanished since indexing is named in the error."""
        ref = self.series_ref(series_id)
        frames = self.stack_frames(series_id)
        self._check_files_unchanged(ref)
        from workstation.dicom.loader import load_frames

        return load_frames(frames, source=ref)

    def _check_files_unchanged(self, ref: SeriesRef) -> None:
        """Refuse files that vanished or changed since indexing: stored pixel offsets would lie."""
        indexed = {
            r["path"]: (r["size"], r["mtime_ns"])
            for r in self._db.query(
                "SELECT path, size, mtime_ns FROM dicom_instances WHERE series_uid = ?",
                (ref.series_uid,),
            )
        }
        for path in ref.paths:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                raise DicomProblem(
                    path,
                    f"file of series {ref.stack_id} no longer exists; "
                    "run `workstation index` on its folder again",
                ) from None
            except OSError as error:
                raise DicomProblem(path, f"cannot read the file: {error.strerror}") from None
            if indexed.get(path, (st.st_size, st.st_mtime_ns)) != (st.st_size, st.st_mtime_ns):
                raise DicomProblem(
                    path,
                    f"file of series {ref.stack_id} changed since it was indexed; "
                    "run `workstation index` on its folder again",
                )
