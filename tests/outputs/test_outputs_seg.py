"""The DICOM Segmentation a label map becomes: valid (dciodvfy), readable by highdicom, and
overlaying exactly on its source series, frame by frame."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from workstation.core.results import Label, LabelMap
from workstation.outputs import RunInfo, write_results
from workstation.testing.dciodvfy import dciodvfy_available, validate_dicom

needs_dciodvfy = pytest.mark.skipif(
    not dciodvfy_available(), reason="dciodvfy (apt-get install dicom3tools) is not installed"
)


def _source_positions(paths) -> dict[str, tuple[float, ...]]:
    out = {}
    for path in paths:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        out[ds.SOPInstanceUID] = tuple(float(v) for v in ds.ImagePositionPatient)
    return out


def _assert_overlays(seg_path, volume, labels: np.ndarray, segment_of_value: dict[int, int]):
    """Each SEG frame sits at its source image's position and holds the label map's slice."""
    import highdicom as hd

    seg = hd.seg.segread(seg_path)
    source_positions = _source_positions(volume.source.paths)
    assert seg.SeriesInstanceUID != volume.source.series_uid
    assert seg.StudyInstanceUID == volume.source.study_uid
    assert seg.FrameOfReferenceUID == pydicom.dcmread(volume.source.paths[0]).FrameOfReferenceUID
    referenced = {
        item.ReferencedSOPInstanceUID
        for series in seg.ReferencedSeriesSequence
        for item in series.ReferencedInstanceSequence
    }
    assert referenced == set(volume.source.instance_uids)
    for frame in seg.PerFrameFunctionalGroupsSequence:
        source_uid = (
            frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        )
        position = tuple(float(v) for v in frame.PlanePositionSequence[0].ImagePositionPatient)
        np.testing.assert_allclose(position, source_positions[source_uid], atol=1e-3)
    for sop_uid, position in source_positions.items():
        k = round(volume.world_to_index(position)[2])
        pixels = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=[sop_uid], combine_segments=True, relabel=False
        )[0]
        expected = np.zeros_like(labels[k], dtype=np.int64)
        for value, segment in segment_of_value.items():
            expected[labels[k] == value] = segment
        np.testing.assert_array_equal(pixels, expected)


@needs_dciodvfy
def test_threshold_seg_is_valid_and_overlays_the_source(
    synthetic_ct_series, synthetic_ct_volume, run_analysis, tmp_path
):
    out = tmp_path / "run"
    results = run_analysis(
        "threshold.segment", synthetic_ct_volume, params={"lower": 200}, out_dir=out
    )
    label_map = results.one("label_map")
    seg_path = out / "threshold.seg.dcm"
    report = validate_dicom(seg_path)
    assert report.errors == [], report.text
    # the threshold finds the spine, which is the phantom's bone label
    bone = synthetic_ct_series.labels == synthetic_ct_series.label_id("bone")
    np.testing.assert_array_equal(label_map.volume.array > 0, bone)
    _assert_overlays(seg_path, synthetic_ct_volume, label_map.volume.array, {1: 1})

    seg = pydicom.dcmread(seg_path)
    assert seg.Manufacturer == "Workstation"
    assert "threshold.segment 1.0.0" in " ".join(seg.SoftwareVersions)
    assert str(seg.ContentCreatorName).startswith("threshold.segment")
    algorithm = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert algorithm.AlgorithmName == "HU threshold segmentation"
    assert algorithm.AlgorithmVersion == "1.0.0"
    assert seg.SegmentSequence[0].SegmentLabel == "Component 1"
    # the run indexed the SEG: it shows under its study
    assert results.outcome.indexed == [str(seg_path)]


def _run_info(volume, **extra) -> RunInfo:
    return RunInfo(
        analysis_id="test.segment",
        analysis_version="2.1",
        analysis_title="Test segmenter",
        plugin="test",
        parameters={"level": 3},
        source_series=volume.source,
        **extra,
    )


@needs_dciodvfy
@pytest.mark.parametrize("orientation", ["coronal", "sagittal"])
def test_seg_of_a_non_axial_series_overlays(tmp_path, orientation):
    """Frames are matched by geometry, not by file order: coronal and sagittal stacks, whose
    volume axes differ from the files' rows and columns, still overlay voxel for voxel."""
    from workstation.dicom.catalog import Catalog
    from workstation.dicom.index import index_paths
    from workstation.testing.phantoms import write_analytic_series

    series = write_analytic_series(tmp_path / "src", orientation=orientation, shape=(6, 10, 12))
    index_paths(tmp_path / "store", [series.folder])
    with Catalog(tmp_path / "store") as catalog:
        volume = catalog.open_series(series.series_uid)
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, size=volume.shape).astype(np.uint8)
    label_map = LabelMap(
        name="regions",
        volume=volume.with_array(labels),
        labels=[Label(1, "Liver", (200, 0, 0), ("SCT", "10200004", "Liver")), Label(2, "Lesion")],
    )
    files = write_results([label_map], tmp_path / "out", _run_info(volume))
    seg_path = next(f.path for f in files if f.kind == "dicom_seg")
    report = validate_dicom(seg_path)
    assert report.errors == [], report.text
    _assert_overlays(seg_path, volume, labels, {1: 1, 2: 2})
    seg = pydicom.dcmread(seg_path)
    liver = seg.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0]
    assert (liver.CodingSchemeDesignator, liver.CodeValue, liver.CodeMeaning) == (
        "SCT",
        "10200004",
        "Liver",
    )


@needs_dciodvfy
def test_seg_of_an_enhanced_multiframe_source_references_its_frames(tmp_path):
    import highdicom as hd

    from workstation.dicom.catalog import Catalog
    from workstation.dicom.index import index_paths
    from workstation.testing.phantoms import write_analytic_series

    series = write_analytic_series(tmp_path / "src", enhanced=True, shape=(5, 8, 9))
    index_paths(tmp_path / "store", [series.folder])
    with Catalog(tmp_path / "store") as catalog:
        volume = catalog.open_series(series.series_uid)
    labels = np.zeros(volume.shape, np.uint8)
    labels[:, 2:5, 3:7] = 1
    labels[3] = 0
    label_map = LabelMap(name="box", volume=volume.with_array(labels), labels=[Label(1, "Box")])
    files = write_results([label_map], tmp_path / "out", _run_info(volume))
    seg_path = next(f.path for f in files if f.kind == "dicom_seg")
    assert validate_dicom(seg_path).errors == []
    seg = hd.seg.segread(seg_path)
    source = pydicom.dcmread(series.paths[0], stop_before_pixels=True)
    positions = [
        tuple(float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient)
        for item in source.PerFrameFunctionalGroupsSequence
    ]
    for frame in seg.PerFrameFunctionalGroupsSequence:
        ref = frame.DerivationImageSequence[0].SourceImageSequence[0]
        position = tuple(float(v) for v in frame.PlanePositionSequence[0].ImagePositionPatient)
        assert position == pytest.approx(positions[int(ref.ReferencedFrameNumber) - 1], abs=1e-3)
    pixels = seg.get_volume(combine_segments=True).array  # highdicom's own geometry
    assert int(pixels.sum()) == int(labels.sum())


def test_label_map_without_dicom_source_is_written_as_nifti_only(tmp_path):
    import nibabel as nib

    from workstation.core.volume import Volume

    volume = Volume(np.zeros((3, 4, 5), np.int16), (1.0, 1.0, 2.0))
    labels = np.zeros(volume.shape, np.uint8)
    labels[1, 1:3, 2:4] = 1
    label_map = LabelMap(name="mask", volume=volume.with_array(labels), labels=[Label(1, "Mask")])
    files = write_results(label_map, tmp_path, RunInfo(analysis_id="test.mask"))
    kinds = sorted(f.kind for f in files)
    assert kinds == ["json", "manifest", "nifti"]
    manifest = (tmp_path / "run.json").read_text()
    assert "not a DICOM series" in manifest and "NIfTI only" in manifest
    back = Volume.from_nifti(nib.load(tmp_path / "mask.nii.gz"))
    np.testing.assert_array_equal(back.array, labels)
    assert back.geometry.is_close(volume.geometry)


def test_seg_refuses_a_label_map_off_the_source_grid(synthetic_ct_volume, tmp_path):
    from workstation.outputs import OutputError

    shifted = synthetic_ct_volume.with_array(np.ones(synthetic_ct_volume.shape, np.uint8))
    shifted.origin = (shifted.origin[0] + 0.7, *shifted.origin[1:])
    label_map = LabelMap(name="shifted", volume=shifted, labels=[Label(1, "All")])
    with pytest.raises(OutputError, match=r"IM0000\d\.dcm: source image does not lie on"):
        write_results([label_map], tmp_path, _run_info(synthetic_ct_volume))
    # what could be written is there, and run.json says what went wrong
    assert (tmp_path / "shifted.nii.gz").exists()
    assert "does not lie on the result's grid" in (tmp_path / "run.json").read_text()


def test_seg_frames_are_found_by_geometry_on_a_flipped_grid(synthetic_ct_volume, tmp_path):
    """A label map whose array runs the other way along x and z (same voxels in space) gives
    the same SEG frames: frames are placed by position, not by array order."""
    import highdicom as hd

    from workstation.core.volume import Volume

    volume = synthetic_ct_volume
    labels = np.zeros(volume.shape, np.uint8)
    labels[2:9, 10:30, 5:20] = 1
    nz, _ny, nx = volume.shape
    flipped = Volume(
        labels[::-1, :, ::-1].copy(),
        volume.spacing,
        tuple(volume.index_to_world((nx - 1, 0, nz - 1))),
        volume.direction @ np.diag([-1.0, 1.0, -1.0]),
        source=volume.source,
    )
    np.testing.assert_allclose(
        flipped.index_to_world((0, 0, 0)), volume.index_to_world((nx - 1, 0, nz - 1))
    )
    pixels = []
    for name, grid in (("plain", volume.with_array(labels)), ("flipped", flipped)):
        label_map = LabelMap(name=name, volume=grid, labels=[Label(1, "Box")])
        write_results([label_map], tmp_path / name, _run_info(volume))
        seg = hd.seg.segread(tmp_path / name / f"{name}.seg.dcm")
        pixels.append(
            seg.get_pixels_by_source_instance(
                source_sop_instance_uids=list(volume.source.instance_uids), combine_segments=True
            )
        )
    np.testing.assert_array_equal(pixels[0], pixels[1])
    assert pixels[0].sum() == labels.sum()
