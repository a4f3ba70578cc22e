"""Indexing from headers already read (`index_headers`) stores what `index_paths` stores.

Receive paths (C-GET through getscu, the listener) read each object's first bytes to check it;
they build its header from those bytes (`fast_header.header_from_head`) and hand it to the index
instead of letting the index read and parse the file again. A user must not be able to tell:
the store holds the same rows, table by table, as if the files had been indexed from disk, and
a later `workstation index` over them finds them unchanged.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)

from workstation.dicom.fast_header import header_from_head, parse_head
from workstation.dicom.headers import read_header
from workstation.dicom.index import index_headers, index_paths, open_index
from workstation.dicom.net.receive import ArrivalIndexer, InlineIndexer, ReceivedInstance
from workstation.dicom.records import DicomProblem

CT = "1.2.840.10008.5.1.4.1.1.2"
HEAD = 64 * 1024  # what the C-GET check reads of each file
TIME_COLUMNS = {"indexed_at", "detected_at"}


def ct(path: Path, syntax: str, study: str, series: str, number: int, **values) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT
    ds.file_meta.TransferSyntaxUID = syntax
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = values.pop("sop", None) or generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyDate, ds.StudyTime, ds.Modality = "20240102", "101112", "CT"
    ds.PatientName, ds.PatientID, ds.PatientSex = "Müller^Jürgen", "PAT-7", "M"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.SeriesNumber, ds.InstanceNumber = "3", str(number)
    ds.SeriesDescription = "Axial"
    ds.ImagePositionPatient = ["-120.5", "-99.75", str(2.5 * number)]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = 6, 5
    ds.PixelSpacing = ["0.7", "0.8"]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 1
    ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
    ds.WindowCenter, ds.WindowWidth = ["40", "400"], ["400", "1500"]
    for keyword, value in values.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    ds.PixelData = np.arange(ds.get("Rows", 6) * 5, dtype="<i2").tobytes()
    if syntax == RLELossless:
        ds.PixelData = encapsulate([b"\x00" * 64])
        ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    return path


def with_sequence(path: Path) -> Path:
    """Undefined-length nested sequences before the pixel data (walked item by item)."""
    from pydicom import dcmread

    ds = dcmread(path)
    item = Dataset()
    item.ReferencedSOPClassUID = CT
    item.ReferencedSOPInstanceUID = generate_uid()
    ds.ReferencedImageSequence = Sequence([item, Dataset()])
    ds["ReferencedImageSequence"].value.is_undefined_length = True
    ds.save_as(path, enforce_file_format=True)
    return path


def with_long_header(path: Path) -> Path:
    """A private value longer than the head a receiver reads: the index reads this file."""
    from pydicom import dcmread

    ds = dcmread(path)
    ds.add_new(0x00290010, "LO", "ACME BLOB")
    ds.add_new(0x00291010, "OB", bytes(range(256)) * 300)  # 75 kB
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def folder(tmp_path) -> Path:
    """Files of the kinds a PACS sends, two studies, a duplicate and a bad file among them."""
    data = tmp_path / "data"
    data.mkdir()
    study, other_study = generate_uid(), generate_uid()
    series = [generate_uid() for _ in range(4)]
    for number in range(1, 4):
        ct(data / f"a{number}.dcm", ExplicitVRLittleEndian, study, series[0], number)
    for number in range(1, 3):
        ct(data / f"b{number}.dcm", ImplicitVRLittleEndian, study, series[1], number)
    with_sequence(ct(data / "b3.dcm", ImplicitVRLittleEndian, study, series[1], 3))
    ct(data / "c1.dcm", RLELossless, other_study, series[2], 1, PatientID="PAT-8")
    ct(data / "c2.dcm", ExplicitVRLittleEndian, other_study, series[2], 2, PatientID="PAT-8")
    # no geometry: indexed with a warning (a problem row)
    ct(data / "d1.dcm", ExplicitVRLittleEndian, study, series[3], 1, ImagePositionPatient=None)
    # a size that differs inside series[0]: a series-level problem
    ct(data / "a4.dcm", ExplicitVRLittleEndian, study, series[0], 4, Rows=7)
    with_long_header(ct(data / "a5.dcm", ExplicitVRLittleEndian, study, series[0], 5))
    # the same SOP Instance UID twice: the first path in sorted order wins
    shutil.copy(data / "a1.dcm", data / "z-duplicate.dcm")
    # no Rows: not an image the index keeps (a problem naming the file)
    ct(data / "e1.dcm", ExplicitVRLittleEndian, study, series[3], 2, Rows=None)
    ct(data / "f1.dcm", ExplicitVRBigEndian, study, series[3], 3)  # pydicom reads it
    return data


def head_header(path: str):
    """What a receive path gets from the bytes it read to check the file."""
    with open(path, "rb") as handle:
        stat = os.fstat(handle.fileno())
        head = handle.read(HEAD)
    return header_from_head(path, stat, head)


def built_from_heads(paths: list[str]) -> list:
    """The headers a receiver builds; the other files are left for the index to read."""
    headers = []
    for path in paths:
        try:
            header = head_header(path)
        except DicomProblem:
            continue
        if header is not None:
            headers.append(header)
    return headers


def tables(store: Path, ids: bool = True) -> dict[str, list[tuple]]:
    """Every table of the store's DICOM index, rows sorted, without the time stamps."""
    conn = sqlite3.connect(store / "workstation.sqlite")
    try:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'dicom_%'"
            )
        ]
        found = {}
        for name in sorted(names):
            columns = [r[1] for r in conn.execute(f"PRAGMA table_info({name})")]
            kept = [c for c in columns if c not in TIME_COLUMNS and (ids or c != "id")]
            rows = conn.execute(f"SELECT {', '.join(kept)} FROM {name}").fetchall()
            found[name] = sorted(rows, key=repr)
        return found
    finally:
        conn.close()


def test_index_headers_stores_the_rows_index_paths_stores(tmp_path, folder):
    paths = sorted(os.path.realpath(p) for p in folder.iterdir())
    headers = built_from_heads(paths[::-1])
    assert len(headers) == 11  # not: the long header, missing Rows, big endian

    by_headers = index_headers(tmp_path / "from-headers", headers)
    by_paths = index_paths(tmp_path / "from-paths", [p for p in paths if _in(p, headers)])
    assert by_headers.as_dict() == by_paths.as_dict()
    assert by_headers.instances_added == 10 and by_headers.problems == 3  # dup, warning, series
    expected = tables(tmp_path / "from-paths")
    assert sum(len(rows) for rows in expected.values()) > 30
    assert tables(tmp_path / "from-headers") == expected


def test_a_later_index_run_finds_those_files_unchanged(tmp_path, folder):
    paths = sorted(os.path.realpath(p) for p in folder.iterdir())
    headers = built_from_heads(paths)
    store = tmp_path / "store"
    index_headers(store, headers)
    again = index_paths(store, [folder])
    assert again.skipped_unchanged == len(headers)
    # the three files it had not seen: two images, one problem (and series[0] sizes again)
    assert again.instances_added == 2 and again.problems == 2
    assert tables(store, ids=False) == _indexed_once(tmp_path / "once", folder)

    # the same headers again are skipped, as index_paths skips unchanged files
    repeat = index_headers(store, headers)
    assert repeat.skipped_unchanged == len(headers) and repeat.instances_added == 0


def test_a_changed_file_is_indexed_again_from_its_new_header(tmp_path, folder):
    path = os.path.realpath(folder / "a1.dcm")
    store = tmp_path / "store"
    index_headers(store, [head_header(path)])
    ct(Path(path), ExplicitVRLittleEndian, generate_uid(), generate_uid(), 1, sop="1.2.3.4")
    os.utime(path, ns=(1, 1))  # a new mtime, whatever the clock's resolution
    summary = index_headers(store, [head_header(path)])
    assert summary.instances_updated == 1 and summary.skipped_unchanged == 0
    db = open_index(store)
    try:
        rows = db.query("SELECT sop_instance_uid, mtime_ns FROM dicom_instances")
    finally:
        db.close()
    assert [(r["sop_instance_uid"], r["mtime_ns"]) for r in rows] == [("1.2.3.4", 1)]


def test_arrival_indexer_with_and_without_headers_stores_the_same(tmp_path, folder):
    """The receive paths' indexer: headers where the receiver built them, the file otherwise."""
    paths = sorted(os.path.realpath(p) for p in folder.iterdir())
    indexer = ArrivalIndexer(tmp_path / "store", in_process=True, min_batch=1)
    built = {h.path: h for h in built_from_heads(paths)}
    arrivals = [(ReceivedInstance(Path(p), "", "", "", "AE"), built.get(p)) for p in paths]
    indexer.submit_many(arrivals[:5])
    indexer.submit_many(arrivals[5:])
    indexer.close()
    assert not indexer.errors
    assert tables(tmp_path / "store", ids=False) == _indexed_once(tmp_path / "once", folder)


def test_header_from_head_equals_read_header_or_declines(folder):
    for path in sorted(str(p) for p in folder.iterdir()):
        try:
            expected = read_header(path)
        except DicomProblem as problem:
            with pytest.raises(DicomProblem) as raised:
                head_header(path)
            assert raised.value.reason == problem.reason and path in str(raised.value)
            continue
        ours = head_header(path)
        if ours is None:  # longer than the head, or a file only pydicom reads
            with open(path, "rb") as handle:
                assert parse_head(handle.read(HEAD), os.path.getsize(path)) is None
            assert Path(path).name in ("a5.dcm", "f1.dcm")
            continue
        for field in dataclasses.fields(ours):
            assert getattr(ours, field.name) == getattr(expected, field.name), field.name


def _in(path: str, headers) -> bool:
    return any(h.path == path for h in headers)


def _indexed_once(store: Path, folder: Path) -> dict[str, list[tuple]]:
    index_paths(store, [folder])
    return tables(store, ids=False)


def test_a_batch_of_new_images_is_written_at_once_with_the_rows_index_paths_writes(
    tmp_path, folder
):
    """A retrieval's usual batch (images the index has never held, each UID once) is written
    with one statement per table; warnings and a size that differs inside a series included."""
    (folder / "z-duplicate.dcm").unlink()
    paths = sorted(os.path.realpath(p) for p in folder.iterdir())
    headers = built_from_heads(paths)
    assert any(h.warnings for h in headers)  # d1: no geometry
    by_headers = index_headers(tmp_path / "from-headers", headers)
    by_paths = index_paths(tmp_path / "from-paths", [p for p in paths if _in(p, headers)])
    assert by_headers.as_dict() == by_paths.as_dict()
    assert by_headers.instances_added == len(headers) and by_headers.problems == 2
    assert tables(tmp_path / "from-headers") == tables(tmp_path / "from-paths")


def test_a_batch_holding_an_indexed_image_is_written_file_by_file(tmp_path, folder):
    """One image of the batch already indexed (from another path): the batch goes file by
    file, and the copy already in the store wins, as with index_paths."""
    paths = sorted(os.path.realpath(p) for p in folder.iterdir())
    first = [p for p in paths if p.endswith("a1.dcm")]
    rest = [p for p in paths if not p.endswith("a1.dcm")]
    store, reference = tmp_path / "store", tmp_path / "reference"
    index_headers(store, built_from_heads(first))
    summary = index_headers(store, built_from_heads(rest))
    index_paths(reference, first)
    expected = index_paths(reference, [p for p in rest if _in(p, built_from_heads(rest))])
    assert summary.as_dict() == expected.as_dict()
    assert any("duplicate" in row for row in tables(store)["dicom_problems"])
    assert tables(store, ids=False) == tables(reference, ids=False)


def test_inline_indexer_stores_what_the_arrival_indexer_stores(tmp_path, folder):
    """The dcmtk retrieval indexes in its own thread, batch by batch, the index held open."""
    paths = sorted(os.path.realpath(p) for p in folder.iterdir())
    seen: list[ReceivedInstance] = []
    indexer = InlineIndexer(tmp_path / "store", seen.append)
    built = {h.path: h for h in built_from_heads(paths)}
    arrivals = [(ReceivedInstance(Path(p), "", "", "", "AE"), built.get(p)) for p in paths]
    indexer.submit_many(arrivals[:5])
    indexer.submit_many(arrivals[5:], final=True)
    indexer.close()
    assert not indexer.errors
    assert [item.path for item in seen] == [Path(p) for p in paths]
    assert all(item.indexed for item in seen)
    assert tables(tmp_path / "store", ids=False) == _indexed_once(tmp_path / "once", folder)
