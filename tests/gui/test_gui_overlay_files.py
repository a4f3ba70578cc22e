"""Overlays from files: a run folder written by the result writers (its run.json says which NIfTI
is a label map, which a heat map, which a derived volume), a NIfTI label map, bad files."""

from __future__ import annotations

import numpy as np
import pytest

from workstation.core.results import DerivedVolume, HeatMap, Label, LabelMap
from workstation.gui.loading import ViewerInputError, load_overlay


def test_run_folder_gives_its_label_and_heat_maps_but_not_derived_volumes(synth, tmp_path):
    from workstation.outputs import write_results

    volume = synth.make_volume(
        synth.acquisitions["oblique"], shape=(10, 12, 14), spacing=(0.8, 0.9, 2.0)
    )
    labels = np.zeros(volume.shape, dtype=np.uint8)
    labels[3:6, 4:8, 5:9] = 2
    heat = np.linspace(0, 1, labels.size, dtype=np.float32).reshape(volume.shape)
    results = [
        LabelMap(
            name="organs",
            volume=volume.with_array(labels),
            labels=[Label(2, "Spleen", (10, 200, 30))],
        ),
        HeatMap(
            name="saliency",
            volume=volume.with_array(heat),
            value_range=(0.0, 2.0),
            units="%",
            colormap="hot",
        ),
        DerivedVolume(name="denoised", volume=volume.with_array(volume.array.astype(np.float32))),
    ]
    run = tmp_path / "run"
    write_results(results, run, {"analysis_id": "test.overlays"})
    loaded = load_overlay(run)
    assert sorted(type(r).__name__ for r in loaded) == ["HeatMap", "LabelMap"]
    label_map = next(r for r in loaded if isinstance(r, LabelMap))
    assert [(lab.value, lab.name, tuple(lab.color)) for lab in label_map.labels] == [
        (2, "Spleen", (10, 200, 30))
    ]
    on_source = label_map.volume.resample_to(volume, order=0)
    np.testing.assert_array_equal(on_source.array, labels)
    heat_map = next(r for r in loaded if isinstance(r, HeatMap))
    np.testing.assert_allclose(heat_map.volume.resample_to(volume).array, heat, atol=1e-5)
    # shown as the analysis asked, not in a default map and range
    assert (heat_map.colormap, heat_map.value_range, heat_map.units) == ("hot", (0.0, 2.0), "%")


def test_nifti_label_map_without_table_gets_named_labels(synth, tmp_path):
    import nibabel as nib

    volume = synth.make_volume(synth.acquisitions["axial"], shape=(4, 5, 6))
    labels = volume.with_array(np.zeros(volume.shape, dtype=np.int16))
    labels.array[1, 1, 1] = 4
    path = tmp_path / "mask.nii.gz"
    nib.save(labels.to_nifti(), str(path))
    (result,) = load_overlay(path)
    assert isinstance(result, LabelMap)
    assert [(lab.value, lab.name) for lab in result.labels] == [(4, "Label 4")]


def test_unreadable_overlays_are_named(tmp_path):
    with pytest.raises(ViewerInputError, match="no such file"):
        load_overlay(tmp_path / "missing.nii.gz")
    bad_seg = tmp_path / "seg.dcm"
    bad_seg.write_bytes(b"DICM? no")
    with pytest.raises(ViewerInputError, match=r"seg\.dcm: cannot read as DICOM SEG"):
        load_overlay(bad_seg)
    empty = tmp_path / "empty-run"
    empty.mkdir()
    with pytest.raises(ViewerInputError, match="no label or heat maps"):
        load_overlay(empty)


def test_dicom_seg_overlay_lands_on_its_source_voxels(
    synthetic_ct_series, synthetic_ct_volume, tmp_path
):
    from workstation.outputs import write_results

    volume = synthetic_ct_volume
    lesion = synthetic_ct_series.label_id("lesion")
    mask = (synthetic_ct_series.labels == lesion).astype(np.uint8)
    result = LabelMap(
        name="lesion", volume=volume.with_array(mask), labels=[Label(1, "Lesion", (255, 0, 0))]
    )
    outputs = write_results([result], tmp_path / "run", {"analysis_id": "test.seg"})
    seg = next(o.path for o in outputs if o.kind == "dicom_seg")
    (loaded,) = load_overlay(seg)
    assert [lab.name for lab in loaded.labels] == ["Lesion"]
    on_source = loaded.volume.resample_to(volume, order=0)
    np.testing.assert_array_equal(on_source.array > 0, mask > 0)
