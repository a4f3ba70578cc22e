"""DICOM export into a folder: a folder that is not empty is refused (two series never mix by
accident) unless the caller says to overwrite; a failed export leaves nothing behind, and the
audit log still records it, with the absolute destination."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread

from workstation.cli import main
from workstation.dicom.export_dicom import ExportError, export_dicom
from workstation.dicom.net import audit_log


@pytest.fixture
def store_with_two_series(tmp_path, ct_series):
    from workstation.dicom.index import index_paths

    first = ct_series(tmp_path / "a", 4, series_number=1)
    second = ct_series(tmp_path / "b", 3, series_number=2)
    store = tmp_path / "store"
    index_paths(store, [tmp_path / "a", tmp_path / "b"])
    uids = [str(dcmread(p[0]).SeriesInstanceUID) for p in (first, second)]
    return store, uids, first


def test_a_folder_that_is_not_empty_is_refused_and_named(store_with_two_series, tmp_path, capsys):
    store, (first, second), _ = store_with_two_series
    out = tmp_path / "mix"
    assert len(export_dicom(store, first, out)) == 4
    with pytest.raises(ExportError) as caught:
        export_dicom(store, second, out)
    assert str(caught.value) == (
        f"{out} is not empty (4 item(s): IMG0001.dcm, IMG0002.dcm, IMG0003.dcm and 1 more); "
        "export into an empty or new folder, or pass --overwrite to write into it anyway"
    )
    assert {str(dcmread(p).SeriesInstanceUID) for p in out.iterdir()} == {first}

    code = main(["--store", str(store), "export", second, str(out), "--format", "dicom"])
    assert code == 1
    assert f"{out} is not empty" in capsys.readouterr().err

    written = export_dicom(store, second, out, overwrite=True)  # asked for explicitly
    assert [p.name for p in written] == ["IMG0001.dcm", "IMG0002.dcm", "IMG0003.dcm"]


def test_a_failed_export_removes_what_it_wrote(store_with_two_series, tmp_path):
    store, (first, _), files = store_with_two_series
    by_slice = sorted(files, key=lambda p: float(dcmread(p).ImagePositionPatient[2]))
    by_slice[2].unlink()  # the third file of the series is gone from the disk
    out = tmp_path / "relative-out"
    with pytest.raises(ExportError, match=str(by_slice[2])):
        export_dicom(store, first, out, deidentify=True)
    assert not out.exists()  # the export made the folder: it is taken away again

    kept = tmp_path / "kept"
    kept.mkdir()
    with pytest.raises(ExportError):
        export_dicom(store, first, kept)
    assert kept.is_dir() and not list(kept.iterdir())  # a folder the user made stays

    entry = audit_log(store)[-1]
    assert (entry.action, entry.outcome, entry.instances) == ("export", "failed", 0)
    assert str(by_slice[2]) in entry.detail
    assert entry.destination == str(kept) and Path(entry.destination).is_absolute()


def test_a_failed_overwrite_leaves_the_earlier_export_as_it_was(store_with_two_series, tmp_path):
    store, (first, second), first_files = store_with_two_series
    out = tmp_path / "out"
    export_dicom(store, second, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    first_files[-1].unlink()  # one file of the first series is gone from the disk
    with pytest.raises(ExportError, match=str(first_files[-1])):
        export_dicom(store, first, out, overwrite=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_files_of_the_series_the_store_cannot_use_are_named_not_skipped_silently(
    tmp_path, ct_series, capsys
):
    from pydicom.uid import generate_uid

    from workstation.dicom.index import index_paths

    files = ct_series(tmp_path / "a", 3)
    broken = dcmread(files[0])
    broken.Rows = 0  # an empty image: the index records it as a problem of this series
    broken.SOPInstanceUID = broken.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    broken_path = tmp_path / "a" / "broken.dcm"
    broken.save_as(broken_path)
    store = tmp_path / "store"
    index_paths(store, [tmp_path / "a"])
    series = str(broken.SeriesInstanceUID)
    out = tmp_path / "out"
    code = main(["--store", str(store), "export", series, str(out), "--format", "dicom"])
    assert code == 0
    captured = capsys.readouterr()
    assert f"wrote 3 DICOM file(s) to {out}" in captured.out
    assert "left out 1 file(s) of the series that the store cannot use" in captured.err
    assert str(broken_path) in captured.err
    assert audit_log(store)[-1].detail == "1 unusable file(s) left out"
