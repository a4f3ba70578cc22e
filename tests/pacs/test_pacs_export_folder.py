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
    assert "2 file(s) written before, removed again" in entry.detail
    assert entry.destination == str(kept) and Path(entry.destination).is_absolute()


def test_the_audit_records_an_absolute_destination_for_a_relative_one(
    store_with_two_series, tmp_path, monkeypatch
):
    store, (first, _), _ = store_with_two_series
    monkeypatch.chdir(tmp_path)
    export_dicom(store, first, Path("out/plain"))
    assert audit_log(store)[-1].destination == str(tmp_path / "out" / "plain")


def test_export_command_overwrites_only_when_asked(store_with_two_series, tmp_path, capsys):
    from workstation.cli import build_parser

    export = build_parser()._subparsers._group_actions[0].choices["export"]  # type: ignore
    if not any("--overwrite" in a.option_strings for a in export._actions):
        pytest.skip("`export --overwrite` is added in workstation/commands/dicom.py by the lead")
    store, (first, second), _ = store_with_two_series
    out = tmp_path / "again"
    base = ["--store", str(store), "export"]
    assert main([*base, first, str(out), "--format", "dicom"]) == 0
    assert main([*base, second, str(out), "--format", "dicom"]) == 1
    assert main([*base, second, str(out), "--format", "dicom", "--overwrite"]) == 0
    assert "wrote 3 DICOM file(s)" in capsys.readouterr().out
