"""De-identified export: PS3.15 basic profile via dicognito plus the profile's own action table."""

from __future__ import annotations

from pathlib import Path

import pytest
from dicognito.anonymizer import Anonymizer
from pacs_peers import identifying_values
from pydicom import dcmread
from pydicom.uid import generate_uid

from workstation.dicom.net import DeidentificationError, Deidentifier, audit_log


def _index(store: Path, folder: Path) -> None:
    from workstation.dicom.index import index_paths

    index_paths(store, [folder])


def test_deidentified_export_contains_none_of_the_source_identifying_values(tmp_path, ct_series):
    from workstation.dicom.export_dicom import export_dicom

    source = ct_series(tmp_path / "src", 3)
    store = tmp_path / "store"
    _index(store, tmp_path / "src")
    original = dcmread(source[0])
    written = export_dicom(
        store, str(original.SeriesInstanceUID), tmp_path / "out", deidentify=True
    )

    assert [p.name for p in written] == ["IMG0001.dcm", "IMG0002.dcm", "IMG0003.dcm"]
    secrets = identifying_values(original)
    for path in written:
        blob = path.read_bytes()
        assert [v for v in secrets if v.encode() in blob] == []
        ds = dcmread(path)
        assert ds.PatientIdentityRemoved == "YES"
        assert "113100" in [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
        assert not [e for e in ds if e.tag.is_private]
    # the images themselves are untouched
    by_position = {tuple(dcmread(p).ImagePositionPatient): dcmread(p).PixelData for p in source}
    for path in written:
        ds = dcmread(path)
        assert ds.PixelData == by_position[tuple(ds.ImagePositionPatient)]
    entry = audit_log(store)[-1]
    assert (entry.action, entry.instances, entry.deidentified, entry.outcome) == (
        "export",
        3,
        True,
        "ok",
    )
    assert entry.destination == str(tmp_path / "out")


def test_replacement_uids_are_consistent_across_a_study_and_private_to_the_store(
    tmp_path, ct_series
):
    from workstation.dicom.export_dicom import export_dicom

    first = ct_series(tmp_path / "s1", 2, series_number=1)
    study = str(dcmread(first[0]).StudyInstanceUID)
    second = ct_series(tmp_path / "s2", 2, study_uid=study, series_number=2)
    store = tmp_path / "store"
    _index(store, tmp_path)
    out1 = export_dicom(
        store, str(dcmread(first[0]).SeriesInstanceUID), tmp_path / "o1", True
    ).written
    out2 = export_dicom(
        store, str(dcmread(second[0]).SeriesInstanceUID), tmp_path / "o2", True
    ).written
    a, b = dcmread(out1[0]), dcmread(out2[0])
    assert a.StudyInstanceUID == b.StudyInstanceUID != study
    assert a.PatientID == b.PatientID and a.PatientName == b.PatientName
    assert a.SeriesInstanceUID != b.SeriesInstanceUID
    assert len({dcmread(p).FrameOfReferenceUID for p in out1}) == 1
    assert a.file_meta.MediaStorageSOPInstanceUID == a.SOPInstanceUID

    other_store = tmp_path / "other-store"
    _index(other_store, tmp_path / "s1")
    out3 = export_dicom(
        other_store, str(dcmread(first[0]).SeriesInstanceUID), tmp_path / "o3", True
    )
    assert dcmread(out3[0]).StudyInstanceUID != a.StudyInstanceUID


def test_plain_export_copies_the_files_unchanged(tmp_path, ct_series):
    from workstation.dicom.export_dicom import export_dicom

    source = ct_series(tmp_path / "src", 2)
    store = tmp_path / "store"
    _index(store, tmp_path / "src")
    written = export_dicom(store, str(dcmread(source[0]).SeriesInstanceUID), tmp_path / "out")
    assert sorted(p.read_bytes() for p in written) == sorted(p.read_bytes() for p in source)
    assert audit_log(store)[-1].deidentified is False


def test_profile_covers_what_dicognito_alone_leaves(ct_series, tmp_path):
    path = ct_series(tmp_path, 1)[0]
    gaps = (
        "StudyDescription",
        "SeriesDescription",
        "ImageComments",
        "PatientAge",
        "PatientWeight",
        "DeviceSerialNumber",
        "ProtocolName",
        "PatientSex",
    )
    plain = dcmread(path)
    Anonymizer(seed="x").anonymize(plain)
    left_by_dicognito = [k for k in gaps if str(plain.get(k, "")) == str(dcmread(path).get(k, ""))]
    assert left_by_dicognito  # the reason the profile table is applied on top

    ds = dcmread(path)
    ds.add_new(0x60000010, "US", 32)  # an overlay plane, with its data
    ds.add_new(0x60003000, "OW", b"\x01" * 128)
    ds.ReferencedImageSequence = [_reference(ds.SOPInstanceUID)]
    original_sop = str(ds.SOPInstanceUID)
    Deidentifier("store-secret").apply(ds)
    for keyword in left_by_dicognito:
        assert str(ds.get(keyword, "") or "") in ("", "ANONYMIZED"), keyword
    assert 0x60003000 not in ds
    # references inside the object follow the replaced UIDs
    assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == ds.SOPInstanceUID
    assert ds.SOPInstanceUID != original_sop


def test_burned_in_annotation_is_refused(ct_series, tmp_path):
    ds = dcmread(ct_series(tmp_path, 1)[0])
    ds.BurnedInAnnotation = "YES"
    with pytest.raises(DeidentificationError, match="BurnedInAnnotation"):
        Deidentifier("secret").apply(ds)


def test_export_of_an_unknown_series_names_it(tmp_path):
    pytest.importorskip("workstation.dicom.catalog")
    from workstation.dicom.export_dicom import export_dicom

    uid = generate_uid()
    with pytest.raises(LookupError, match=uid):
        export_dicom(tmp_path / "store", uid, tmp_path / "out", True)


def _reference(sop_uid):
    from pydicom.dataset import Dataset

    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    item.ReferencedSOPInstanceUID = sop_uid
    return item


def test_export_command_writes_deidentified_dicom_into_a_folder(tmp_path, ct_series, capsys):
    from workstation.cli import main

    source = ct_series(tmp_path / "src", 2)
    store = tmp_path / "store"
    _index(store, tmp_path / "src")
    original = dcmread(source[0])
    series_uid = str(original.SeriesInstanceUID)

    args = ["--store", str(store), "export", series_uid, str(tmp_path / "out")]
    assert main([*args, "--format", "dicom", "--deidentify"]) == 0
    assert "wrote 2 DICOM file(s)" in capsys.readouterr().out
    blobs = [p.read_bytes() for p in sorted((tmp_path / "out").glob("*.dcm"))]
    assert len(blobs) == 2
    assert not [v for v in identifying_values(original) if any(v.encode() in b for b in blobs)]

    # an image format carries no identity, so --deidentify there is a mistake worth naming
    assert main([*args[:-1], str(tmp_path / "x.nii.gz"), "--deidentify"]) == 1
    assert "--deidentify applies to --format dicom" in capsys.readouterr().err
