"""The DICOM index: bad input reported by path, incremental re-indexing, moves, deletes, --copy."""

from __future__ import annotations

import builtins
import dataclasses
import io
import os
import shutil
import sqlite3
from pathlib import Path

import pydicom
import pytest

from workstation.dicom.catalog import Catalog, UnknownSeries
from workstation.dicom.headers import read_header
from workstation.dicom.index import index_paths
from workstation.dicom.index_samples import write_bad_files, write_series
from workstation.dicom.index_schema import FRAME_COLUMNS
from workstation.dicom.records import DicomProblem, FrameRecord


def stacks(catalog: Catalog) -> dict[str, dict]:
    return {
        s["series_id"]: s
        for patient in catalog.tree()
        for study in patient["studies"]
        for s in study["series"]
    }


def problems_by_path(catalog: Catalog) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for p in catalog.problems():
        found.setdefault(p["path"], []).append(p)
    return found


def real(path: Path) -> str:
    return os.path.realpath(path)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


def test_every_frame_record_field_is_stored():
    assert set(FRAME_COLUMNS) == {f.name for f in dataclasses.fields(FrameRecord)}


def test_good_series_indexed_with_tree_and_frames_equal_to_headers(tmp_path, store):
    ct = write_series(tmp_path / "data" / "ct", slices=5, rows=8, columns=6)
    other = write_series(tmp_path / "data" / "other", slices=3, patient_id="PAT-2")
    summary = index_paths(store, [tmp_path / "data"])
    assert (summary.files_seen, summary.instances_added, summary.problems) == (8, 8, 0)
    assert summary.series_touched == {ct.series_uid, other.series_uid}

    with Catalog(store) as catalog:
        assert [p["patient_id"] for p in catalog.tree()] == ["PAT-1", "PAT-2"]
        assert [p["patient_id"] for p in catalog.tree(patient_id="PAT-2")] == ["PAT-2"]
        entry = stacks(catalog)[ct.series_uid]
        assert entry["modality"] == "CT"
        assert entry["dimensions"] == "8x6x5"
        assert entry["instances"] == 5
        assert entry["synthetic"] is False
        # Loading never re-reads headers: what the store returns is what read_header produced.
        stored = sorted(catalog.stack_frames(ct.series_uid), key=lambda f: f.path)
        expected = [f for p in sorted(ct.paths) for f in read_header(p).frames]
        assert stored == expected
        ref = catalog.series_ref(ct.series_uid)
        assert ref.study_uid == ct.study_uid and ref.patient_id == "PAT-1"
        assert sorted(ref.instance_uids) == sorted(ct.sop_uids)


def test_each_bad_input_is_reported_and_the_good_series_still_indexed(tmp_path, store):
    good = write_series(tmp_path / "data" / "a_good", slices=4)
    bad = write_bad_files(tmp_path / "data" / "bad", good)
    summary = index_paths(store, [tmp_path / "data"])
    assert summary.files_seen == 4 + len(bad)

    with Catalog(store) as catalog:
        found = problems_by_path(catalog)
        expected_reasons = {
            "not_dicom": "not a dicom file",
            "truncated": "",  # cut inside the header: reported, wording is the reader's
            "truncated_pixels": "truncated",
            "dicomdir": "dicomdir",
            "no_pixels": "no pixel data",
            "no_geometry": "imagepositionpatient",
        }
        for kind, words in expected_reasons.items():
            assert real(bad[kind]) in found, f"{kind} file not reported"
            reasons = " ".join(p["reason"] for p in found[real(bad[kind])]).lower()
            assert reasons and words in reasons, (kind, reasons)
        odd = found[real(bad["odd_size"])]
        assert any("differ" in p["reason"] and good.series_uid in p["reason"] for p in odd)
        duplicate = found[real(bad["duplicate"])]
        assert duplicate[0]["kind"] == "duplicate"
        assert good.sop_uids[0] in duplicate[0]["reason"]
        assert real(good.paths[0]) in duplicate[0]["reason"]  # names the copy that is used

        listed = stacks(catalog)
        assert listed[good.series_uid]["dimensions"] == f"{good.rows}x{good.columns}x4"
        assert (
            listed[f"{good.series_uid}#1"]["dimensions"] == f"{good.rows + 2}x{good.columns + 3}x1"
        )
        # The first copy in sorted order wins the duplicate SOP Instance UID.
        assert real(good.paths[0]) in catalog.series_ref(good.series_uid).paths


def test_unreadable_file_is_reported(tmp_path, store, monkeypatch):
    good = write_series(tmp_path / "data", slices=2)
    locked = tmp_path / "data" / "locked.dcm"
    shutil.copy(good.paths[0], locked)
    locked.chmod(0)
    if os.access(locked, os.R_OK):
        # Running as root: permissions do not stop reads, so make opening this one file fail the
        # way it does for a normal user (index parses in-process for a folder this small).
        def refuse(real_open):
            def opener(file, *args, **kwargs):
                if isinstance(file, (str, os.PathLike)) and os.fspath(file) == str(locked):
                    raise PermissionError(13, "Permission denied", str(locked))
                return real_open(file, *args, **kwargs)

            return opener

        monkeypatch.setattr(builtins, "open", refuse(builtins.open))
        monkeypatch.setattr(io, "open", refuse(io.open))
        monkeypatch.setattr(os, "open", refuse(os.open))
    try:
        index_paths(store, [tmp_path / "data"])
    finally:
        monkeypatch.undo()
        locked.chmod(0o644)
    with Catalog(store) as catalog:
        found = problems_by_path(catalog)
        assert real(locked) in found
        assert "permission" in found[real(locked)][0]["reason"].lower()
        assert stacks(catalog)[good.series_uid]["instances"] == 2


def test_reindexing_the_same_folder_adds_nothing(tmp_path, store):
    good = write_series(tmp_path / "data" / "a", slices=3)
    write_bad_files(tmp_path / "data" / "bad", good)
    first = index_paths(store, [tmp_path / "data"])
    with Catalog(store) as catalog:
        before = (catalog.tree(), [(p["path"], p["reason"]) for p in catalog.problems()])
    second = index_paths(store, [tmp_path / "data"])
    assert second.files_seen == first.files_seen
    assert second.skipped_unchanged == second.files_seen  # bad files are not re-read either
    assert (second.instances_added, second.instances_updated, second.problems) == (0, 0, 0)
    with Catalog(store) as catalog:
        after = (catalog.tree(), [(p["path"], p["reason"]) for p in catalog.problems()])
    assert after == before


def test_modified_file_is_read_again_and_fixed_file_loses_its_problem(tmp_path, store):
    good = write_series(tmp_path / "data", slices=3)
    broken = tmp_path / "data" / "later.dcm"
    broken.write_bytes(b"not yet")
    index_paths(store, [tmp_path / "data"])

    ds = pydicom.dcmread(good.paths[1])
    ds.ImagePositionPatient = [-20.0, -30.0, 43.0]
    ds.save_as(good.paths[1])
    extra = write_series(
        tmp_path / "scratch",
        slices=1,
        series_uid=good.series_uid,
        study_uid=good.study_uid,
        origin=(-20.0, -30.0, 47.5),
    )
    shutil.copy(extra.paths[0], broken)

    summary = index_paths(store, [tmp_path / "data"])
    assert summary.instances_updated == 1
    assert summary.instances_added == 1
    assert summary.problems == 0
    with Catalog(store) as catalog:
        assert real(broken) not in problems_by_path(catalog)
        assert stacks(catalog)[good.series_uid]["instances"] == 4
        frames = {f.path: f for f in catalog.stack_frames(good.series_uid)}
        assert frames[real(good.paths[1])].position == (-20.0, -30.0, 43.0)
        assert frames[real(good.paths[0])].position == (-20.0, -30.0, 40.0)
        assert real(broken) in frames


def test_deleted_and_moved_files_are_noticed(tmp_path, store):
    keep = write_series(tmp_path / "data" / "keep", slices=3)
    gone = write_series(tmp_path / "data" / "gone", slices=2, patient_id="PAT-GONE")
    index_paths(store, [tmp_path / "data"])

    keep.paths[0].unlink()
    moved_to = tmp_path / "data" / "keep" / "moved.dcm"
    keep.paths[1].rename(moved_to)
    shutil.rmtree(gone.folder)
    summary = index_paths(store, [tmp_path / "data"])
    assert set(summary.removed) == {real(keep.paths[0]), real(keep.paths[1])} | {
        real(p) for p in gone.paths
    }
    with Catalog(store) as catalog:
        listed = stacks(catalog)
        assert gone.series_uid not in listed
        assert "PAT-GONE" not in [p["patient_id"] for p in catalog.tree()]
        assert listed[keep.series_uid]["instances"] == 2
        assert real(moved_to) in catalog.series_ref(keep.series_uid).paths


def test_vanished_file_gives_an_error_naming_it(tmp_path, store):
    good = write_series(tmp_path / "data", slices=3)
    index_paths(store, [tmp_path / "data"])
    good.paths[2].unlink()
    with Catalog(store) as catalog, pytest.raises(DicomProblem) as raised:
        catalog.open_series(good.series_uid)
    assert raised.value.path == real(good.paths[2])
    assert str(good.paths[2].name) in str(raised.value)


def test_unknown_series_is_a_clear_error(tmp_path, store):
    write_series(tmp_path / "data", slices=2)
    index_paths(store, [tmp_path / "data"])
    with Catalog(store) as catalog:
        for bad_id in ("1.2.3.4", "1.2.3.4#1", "nonsense#x"):
            with pytest.raises(UnknownSeries, match="no series"):
                catalog.series_ref(bad_id)


def test_duplicate_takes_over_when_the_winning_file_disappears(tmp_path, store):
    good = write_series(tmp_path / "data" / "a", slices=2)
    spare = tmp_path / "data" / "b" / "spare.dcm"
    spare.parent.mkdir()
    shutil.copy(good.paths[0], spare)
    index_paths(store, [tmp_path / "data"])
    with Catalog(store) as catalog:
        assert real(spare) in problems_by_path(catalog)

    good.paths[0].unlink()
    index_paths(store, [tmp_path / "data"])
    with Catalog(store) as catalog:
        assert real(spare) in catalog.series_ref(good.series_uid).paths
        assert real(spare) not in problems_by_path(catalog)


def test_copy_puts_files_in_the_store_and_they_survive_the_source(tmp_path, store):
    good = write_series(tmp_path / "data", slices=3)
    summary = index_paths(store, [tmp_path / "data"], copy=True)
    assert summary.instances_added == 3
    with Catalog(store) as catalog:
        paths = catalog.series_ref(good.series_uid).paths
    expected = {
        real(store / "files" / good.study_uid / good.series_uid / f"{sop}.dcm")
        for sop in good.sop_uids
    }
    assert set(paths) == expected
    assert not list((store / "files").rglob("*.tmp"))
    assert read_header(sorted(expected)[0]).sop_instance_uid in good.sop_uids

    shutil.rmtree(tmp_path / "data")
    (tmp_path / "data").mkdir()
    summary = index_paths(store, [tmp_path / "data"])
    assert len(summary.removed) == 3
    with Catalog(store) as catalog:
        assert set(catalog.series_ref(good.series_uid).paths) == expected
        assert stacks(catalog)[good.series_uid]["instances"] == 3
        volume = catalog.open_series(good.series_uid)
    assert volume.shape == (3, good.rows, good.columns)
    assert volume.array[2, 0, 5] == 10 * 2 + 5 - 1024


def test_missing_path_is_refused_before_anything_changes(tmp_path, store):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        index_paths(store, [tmp_path / "nowhere"])


def test_store_is_consistent(tmp_path, store):
    write_series(tmp_path / "data", slices=3)
    index_paths(store, [tmp_path / "data"])
    conn = sqlite3.connect(store / "workstation.sqlite")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT version FROM schema_versions WHERE area='dicom'").fetchone()[0] >= 1
    conn.close()


def test_store_inside_the_indexed_folder_is_not_indexed(tmp_path):
    write_series(tmp_path / "data", slices=2)
    store = tmp_path / "store"
    first = index_paths(store, [tmp_path])
    second = index_paths(store, [tmp_path], copy=True)
    assert (first.files_seen, first.problems) == (2, 0)
    assert (second.files_seen, second.problems) == (2, 0)
    with Catalog(store) as catalog:
        assert catalog.problems() == []


def test_progress_counts_every_file(tmp_path, store):
    write_series(tmp_path / "data", slices=4)
    (tmp_path / "data" / "junk").write_bytes(b"junk")
    calls: list[tuple[int, int]] = []
    index_paths(
        store, [tmp_path / "data"], progress=lambda done, total: calls.append((done, total))
    )
    assert calls[0] == (0, 5) and calls[-1] == (5, 5)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    calls.clear()
    index_paths(
        store, [tmp_path / "data"], progress=lambda done, total: calls.append((done, total))
    )
    assert calls == [(5, 5)]  # everything unchanged


def test_file_changed_since_indexing_is_refused_on_load(tmp_path, store):
    good = write_series(tmp_path / "data", slices=3)
    index_paths(store, [tmp_path / "data"])
    with good.paths[1].open("ab") as grown:
        grown.write(b"\0" * 16)
    with Catalog(store) as catalog, pytest.raises(DicomProblem, match="changed since"):
        catalog.open_series(good.series_uid)


def test_unlistable_folder_is_reported_and_its_files_kept(tmp_path, store, monkeypatch):
    write_series(tmp_path / "data" / "open", slices=2)
    hidden = write_series(tmp_path / "data" / "locked", slices=2, patient_id="PAT-2")
    index_paths(store, [tmp_path / "data"])

    locked = tmp_path / "data" / "locked"
    locked.chmod(0)
    if os.access(locked, os.R_OK):  # root lists anything: refuse this one folder instead
        real_scandir = os.scandir

        def scandir(path=".", *args):
            if os.fspath(path) == real(locked):
                raise PermissionError(13, "Permission denied", os.fspath(path))
            return real_scandir(path, *args)

        monkeypatch.setattr(os, "scandir", scandir)
    try:
        summary = index_paths(store, [tmp_path / "data"])
    finally:
        monkeypatch.undo()
        locked.chmod(0o755)
    assert summary.removed == []
    with Catalog(store) as catalog:
        found = problems_by_path(catalog)
        assert "cannot list the folder" in found[real(locked)][0]["reason"]
        assert stacks(catalog)[hidden.series_uid]["instances"] == 2

    index_paths(store, [tmp_path / "data"])
    with Catalog(store) as catalog:
        assert real(locked) not in problems_by_path(catalog)


def test_copy_after_indexing_in_place_moves_into_the_store_once(tmp_path, store):
    good = write_series(tmp_path / "data" / "a", slices=3)
    shutil.copy(good.paths[0], tmp_path / "data" / "zz_duplicate.dcm")
    index_paths(store, [tmp_path / "data"])
    second = index_paths(store, [tmp_path / "data"], copy=True)
    assert (second.instances_added, second.instances_updated) == (0, 3)
    third = index_paths(store, [tmp_path / "data"], copy=True)
    assert third.skipped_unchanged == third.files_seen == 4
    assert (third.instances_added, third.instances_updated, third.problems) == (0, 0, 0)
    with Catalog(store) as catalog:
        paths = catalog.series_ref(good.series_uid).paths
        assert all(p.startswith(real(store / "files")) for p in paths)
        assert [p["kind"] for p in catalog.problems()] == ["duplicate"]
        volume = catalog.open_series(good.series_uid)
    assert volume.array[:, 0, 0].tolist() == [-1024, -1014, -1004]
