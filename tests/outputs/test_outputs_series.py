"""Derived and generated volumes written as new DICOM series: valid, loadable back onto the same
grid with the same values, referencing (or, when synthetic, never naming) their source."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from workstation.core.results import DerivedVolume, GeneratedSeries, HeatMap
from workstation.outputs import RunInfo, write_results
from workstation.testing.dciodvfy import dciodvfy_available, validate_dicom

needs_dciodvfy = pytest.mark.skipif(
    not dciodvfy_available(), reason="dciodvfy (apt-get install dicom3tools) is not installed"
)


def _info(volume, **extra) -> RunInfo:
    return RunInfo(
        analysis_id="test.filter",
        analysis_version="0.3",
        plugin="test",
        distribution="workstation-test",
        source_series=volume.source,
        **extra,
    )


def _load_folder(folder, store):
    from workstation.dicom.catalog import Catalog
    from workstation.dicom.index import index_paths

    summary = index_paths(store, [folder])
    (uid,) = summary.series_touched
    with Catalog(store) as catalog:
        return catalog.open_series(uid)


@needs_dciodvfy
def test_derived_ct_series_keeps_study_references_source_and_values(synthetic_ct_volume, tmp_path):
    source = synthetic_ct_volume
    smoothed = source.array.astype(np.float32) * 0.5 + 0.25  # not integers: needs a rescale
    result = DerivedVolume(
        name="smoothed", volume=source.with_array(smoothed), series_description="Smoothed"
    )
    files = write_results([result], tmp_path / "out", _info(source))
    dicom = sorted(f.path for f in files if f.kind == "dicom_series")
    assert len(dicom) == source.shape[0]
    report = validate_dicom(dicom[0])
    assert report.errors == [], report.text

    ds = pydicom.dcmread(dicom[3])
    first_source = pydicom.dcmread(source.source.paths[0], stop_before_pixels=True)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
    assert list(ds.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert ds.StudyInstanceUID == source.source.study_uid
    assert ds.PatientID == first_source.PatientID
    assert ds.FrameOfReferenceUID == first_source.FrameOfReferenceUID
    assert ds.SeriesInstanceUID != source.source.series_uid
    assert ds.SOPInstanceUID not in source.source.instance_uids
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == source.source.series_uid
    # the source image of this slice is the one at the same position
    ref_uid = ds.SourceImageSequence[0].ReferencedSOPInstanceUID
    ref_path = source.source.paths[source.source.instance_uids.index(ref_uid)]
    ref = pydicom.dcmread(ref_path, stop_before_pixels=True)
    assert [float(v) for v in ref.ImagePositionPatient] == pytest.approx(
        [float(v) for v in ds.ImagePositionPatient]
    )
    assert "test.filter 0.3" in ds.DerivationDescription
    assert "workstation-test" in ds.DerivationDescription

    back = _load_folder(tmp_path / "out" / "smoothed", tmp_path / "store2")
    assert back.geometry.is_close(source.geometry)
    np.testing.assert_allclose(back.array, smoothed, atol=float(ds.RescaleSlope))


@needs_dciodvfy
def test_generated_series_is_synthetic_with_no_source_identifiers(synthetic_ct_volume, tmp_path):
    source = synthetic_ct_volume
    fake = np.clip(source.array[::-1], -1024, 3071).astype(np.int16)
    result = GeneratedSeries(
        name="gan sample",
        volume=source.with_array(fake),
        modality="CT",
        series_description="GAN sample 1",
    )
    files = write_results([result], tmp_path / "out", _info(source))
    dicom = sorted(f.path for f in files if f.kind == "dicom_series")
    assert validate_dicom(dicom[0]).errors == []
    first_source = pydicom.dcmread(source.source.paths[0], stop_before_pixels=True)
    identifiers = {
        source.source.study_uid,
        source.source.series_uid,
        first_source.PatientID,
        str(first_source.PatientName),
        first_source.FrameOfReferenceUID,
        first_source.AccessionNumber,
        *source.source.instance_uids,
    }
    for path in dicom:
        raw = path.read_bytes()
        for identifier in identifiers:
            assert identifier.encode() not in raw, f"{identifier} leaked into {path.name}"
    ds = pydicom.dcmread(dicom[0])
    assert "SYNTHETIC" in ds.SeriesDescription
    assert "SYNTHETIC" in str(ds.PatientName)
    assert "ReferencedSeriesSequence" not in ds and "SourceImageSequence" not in ds
    back = _load_folder(tmp_path / "out" / "gan_sample", tmp_path / "store2")
    np.testing.assert_array_equal(back.array, fake)


@needs_dciodvfy
@pytest.mark.parametrize(
    "modality, sop_class",
    [
        ("MR", "1.2.840.10008.5.1.4.1.1.4"),
        ("OT", "1.2.840.10008.5.1.4.1.1.7"),
    ],
)
def test_non_ct_generated_series_are_mr_or_secondary_capture(tmp_path, modality, sop_class):
    from workstation.core.volume import Volume

    volume = Volume(np.linspace(0, 1, 2 * 6 * 7, dtype=np.float32).reshape(2, 6, 7), (1, 1, 3))
    result = GeneratedSeries(name="sample", volume=volume, modality=modality)
    files = write_results([result], tmp_path, RunInfo(analysis_id="test.gan", demo_weights=True))
    path = sorted(f.path for f in files if f.kind == "dicom_series")[0]
    assert validate_dicom(path).errors == []
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == sop_class
    assert ds.SeriesDescription.startswith("DEMO SYNTHETIC")
    assert "DEMO WEIGHTS" in ds.DerivationDescription
    values = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_allclose(values, volume.array[0], atol=float(ds.RescaleSlope))


@needs_dciodvfy
def test_heat_map_becomes_nifti_and_a_float_parametric_map(synthetic_ct_volume, tmp_path):
    import highdicom as hd

    source = synthetic_ct_volume
    rng = np.random.default_rng(0)
    probability = rng.random(source.shape).astype(np.float32)
    files = write_results(
        [HeatMap(name="lesion probability", volume=source.with_array(probability))],
        tmp_path,
        _info(source),
    )
    kinds = {f.kind for f in files}
    assert {"nifti", "dicom_parametric_map", "manifest"} <= kinds
    path = next(f.path for f in files if f.kind == "dicom_parametric_map")
    report = validate_dicom(path)
    assert report.errors == [], report.text
    pmap = hd.pm.ParametricMap.from_dataset(pydicom.dcmread(path))
    positions = {}
    for p in source.source.paths:
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        positions[ds.SOPInstanceUID] = [float(v) for v in ds.ImagePositionPatient]
    for n, frame in enumerate(pmap.PerFrameFunctionalGroupsSequence):
        uid = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        k = round(source.world_to_index(positions[uid])[2])
        np.testing.assert_array_equal(pmap.pixel_array[n], probability[k])
