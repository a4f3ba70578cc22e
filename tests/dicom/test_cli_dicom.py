"""`workstation index | ls | show | export` as a user runs them."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workstation.cli import main
from workstation.dicom.index_samples import SampleSeries, write_bad_files, write_series

REPO = Path(__file__).resolve().parents[2]
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
OBLIQUE = (np.cos(0.3), np.sin(0.3), 0.0, 0.0, 0.0, -1.0)


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def lps_affine(series: SampleSeries, orientation) -> np.ndarray:
    """The analytic index (i, j, k) -> LPS affine of a written series."""
    row, col = np.asarray(orientation[:3]), np.asarray(orientation[3:])
    normal = np.cross(row, col)
    affine = np.eye(4)
    affine[:3, 0] = row * series.spacing[0]
    affine[:3, 1] = col * series.spacing[1]
    affine[:3, 2] = normal * series.spacing[2]
    affine[:3, 3] = series.origin
    return affine


def expected_values(series: SampleSeries, slices: int) -> np.ndarray:
    """Modality values [i, j, k]: the writer stores 10 * slice + column, intercept -1024."""
    i, _, k = np.meshgrid(
        np.arange(series.columns), np.arange(series.rows), np.arange(slices), indexing="ij"
    )
    return 10 * k + i - 1024


@pytest.fixture
def store(tmp_path: Path) -> str:
    return str(tmp_path / "store")


def test_index_prints_summary_and_ls_lists_the_tree(tmp_path, store, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    ct = write_series(tmp_path / "data" / "ct", slices=4, patient_name="Secret^Name")
    made = write_series(
        tmp_path / "data" / "gan",
        slices=2,
        patient_id="PAT-2",
        patient_name="Other^Name",
        series_description="SYNTHETIC from a GAN",
    )
    code, out, err = run_cli(capsys, "--store", store, "index", str(tmp_path / "data"))
    assert code == 0
    assert "6 files seen, 6 instances added" in out
    assert "2 series, 0 problems" in out
    # Patient data never goes into logs or the index output.
    assert "Secret" not in out + err + caplog.text

    code, out, _ = run_cli(capsys, "--store", store, "ls")
    assert code == 0
    assert "PAT-1" in out and "PAT-2" in out
    assert f"{ct.series_uid}  CT  8x6x4  4 instances  phantom" in out

    code, out, _ = run_cli(capsys, "--store", store, "ls", "--json", "--patient", "PAT-2")
    tree = json.loads(out)
    assert [p["patient_id"] for p in tree] == ["PAT-2"]
    listed = tree[0]["studies"][0]["series"][0]
    assert listed["dimensions"] == "8x6x2" and listed["synthetic"] is True
    assert listed["series_id"] == made.series_uid

    code, out, _ = run_cli(capsys, "--store", store, "ls")
    assert f"{made.series_uid}  CT  8x6x2  2 instances  SYNTHETIC from a GAN  [synthetic]" in out

    code, _, err = run_cli(capsys, "--store", store, "ls", "--patient", "NOBODY")
    assert code == 1 and "NOBODY" in err


def test_ls_errors_lists_each_problem_with_path_and_reason(tmp_path, store, capsys):
    good = write_series(tmp_path / "data" / "a", slices=3)
    bad = write_bad_files(tmp_path / "data" / "bad", good)
    code, out, _ = run_cli(capsys, "--store", store, "index", str(tmp_path / "data"))
    assert code == 0
    code, out, _ = run_cli(capsys, "--store", store, "ls", "--errors")
    assert code == 0
    lines = out.splitlines()
    for kind, path in bad.items():
        matching = [line for line in lines if line.startswith(f"{os.path.realpath(path)}: ")]
        assert matching, f"{kind} missing from ls --errors"
        assert len(matching[0]) > len(os.path.realpath(path)) + 3  # a reason follows the path
    code, out, _ = run_cli(capsys, "--store", store, "ls", "--errors", "--json")
    listed = {p["path"] for p in json.loads(out)}
    assert {os.path.realpath(p) for p in bad.values()} <= listed
    code, out, _ = run_cli(capsys, "--store", store, "ls")
    assert good.series_uid in out  # the good series is still there


@pytest.mark.parametrize(
    ("orientation", "label"),
    [(AXIAL, "axial"), (CORONAL, "coronal"), (SAGITTAL, "sagittal"), (OBLIQUE, "oblique")],
)
def test_show_reports_geometry(tmp_path, store, capsys, orientation, label):
    series = write_series(tmp_path / "data", slices=3, orientation=orientation)
    run_cli(capsys, "--store", store, "index", str(tmp_path / "data"))
    code, out, _ = run_cli(capsys, "--store", store, "show", series.series_uid, "--json")
    assert code == 0
    info = json.loads(out)
    affine = lps_affine(series, orientation)
    assert info["size"] == [series.columns, series.rows, 3]
    assert info["spacing"] == pytest.approx(series.spacing)
    assert info["origin"] == pytest.approx(series.origin)
    assert np.allclose(np.asarray(info["direction"]), affine[:3, :3] / series.spacing, atol=1e-6)
    assert info["orientation"] == label

    code, out, _ = run_cli(capsys, "--store", store, "show", series.series_uid)
    assert code == 0 and f"orientation {label}" in out


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_export_nifti_carries_the_ras_affine(tmp_path, store, capsys, suffix):
    import nibabel as nib
    import SimpleITK as sitk

    series = write_series(tmp_path / "data", slices=5, orientation=CORONAL)
    run_cli(capsys, "--store", store, "index", str(tmp_path / "data"))
    out_file = tmp_path / f"ct{suffix}"
    code, out, _ = run_cli(capsys, "--store", store, "export", series.series_uid, str(out_file))
    assert code == 0 and str(out_file) in out

    lps = lps_affine(series, CORONAL)
    image = nib.load(out_file)
    assert np.allclose(image.affine, np.diag([-1, -1, 1, 1]) @ lps, atol=1e-5)
    assert image.shape == (series.columns, series.rows, 5)
    assert np.array_equal(np.asarray(image.dataobj), expected_values(series, 5))

    itk = sitk.ReadImage(str(out_file))  # SimpleITK converts back to LPS
    assert itk.GetOrigin() == pytest.approx(series.origin, abs=1e-4)
    assert itk.GetSpacing() == pytest.approx(series.spacing, abs=1e-5)
    assert np.allclose(
        np.asarray(itk.GetDirection()).reshape(3, 3), lps[:3, :3] / series.spacing, atol=1e-5
    )


@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
def test_export_itk_formats_round_trip(tmp_path, store, capsys, suffix):
    import SimpleITK as sitk

    series = write_series(tmp_path / "data", slices=4, orientation=SAGITTAL)
    run_cli(capsys, "--store", store, "index", str(tmp_path / "data"))
    out_file = tmp_path / f"ct{suffix}"
    code, _, _ = run_cli(capsys, "--store", store, "export", series.series_uid, str(out_file))
    assert code == 0
    itk = sitk.ReadImage(str(out_file))
    lps = lps_affine(series, SAGITTAL)
    assert itk.GetOrigin() == pytest.approx(series.origin, abs=1e-4)
    assert itk.GetSpacing() == pytest.approx(series.spacing, abs=1e-5)
    assert np.allclose(
        np.asarray(itk.GetDirection()).reshape(3, 3), lps[:3, :3] / series.spacing, atol=1e-6
    )
    array = sitk.GetArrayFromImage(itk)  # [k, j, i]
    assert np.array_equal(array, expected_values(series, 4).transpose(2, 1, 0))


def test_unknown_series_bad_format_and_vanished_file_fail_clearly(tmp_path, store, capsys):
    series = write_series(tmp_path / "data", slices=3)
    run_cli(capsys, "--store", store, "index", str(tmp_path / "data"))

    code, _, err = run_cli(capsys, "--store", store, "show", "1.2.3.999")
    assert code == 1 and "no series '1.2.3.999'" in err
    code, _, err = run_cli(capsys, "--store", store, "export", "1.2.3.999", str(tmp_path / "x.nii"))
    assert code == 1 and "1.2.3.999" in err
    code, _, err = run_cli(
        capsys, "--store", store, "export", series.series_uid, str(tmp_path / "x.png")
    )
    assert code == 1 and "x.png" in err and ".nii.gz" in err
    code, _, err = run_cli(capsys, "--store", store, "index", str(tmp_path / "missing"))
    assert code == 1 and "missing" in err

    series.paths[1].unlink()
    code, _, err = run_cli(capsys, "--store", store, "show", series.series_uid)
    assert code == 1
    assert os.path.realpath(series.paths[1]) in err and "no longer exists" in err
    assert not (tmp_path / "x.nii").exists()


def test_index_copy_from_the_command_line(tmp_path, store, capsys):
    series = write_series(tmp_path / "data", slices=2)
    code, out, _ = run_cli(capsys, "--store", store, "index", "--copy", str(tmp_path / "data"))
    assert code == 0 and "2 instances added" in out
    copied = sorted((Path(store) / "files").rglob("*.dcm"))
    assert [p.stem for p in copied] == sorted(series.sop_uids)


def test_cli_in_a_subprocess(tmp_path):
    """The real entry point, as CI and shell scripts call it (no terminal: no progress bar)."""
    good = write_series(tmp_path / "data", slices=3)
    (tmp_path / "data" / "junk.bin").write_bytes(b"\0" * 200)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    base = [sys.executable, "-m", "workstation.cli", "--store", str(tmp_path / "store")]

    done = subprocess.run(
        [*base, "index", str(tmp_path / "data")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("4 files seen, 3 instances added")
    assert "1 problems" in done.stdout
    assert "indexing" not in done.stderr  # no progress bar when stderr is not a terminal

    done = subprocess.run([*base, "ls", "--errors"], env=env, capture_output=True, text=True)
    assert done.returncode == 0
    assert os.path.realpath(tmp_path / "data" / "junk.bin") in done.stdout

    done = subprocess.run([*base, "show", "9.9.9"], env=env, capture_output=True, text=True)
    assert done.returncode == 1 and "no series '9.9.9'" in done.stderr
    assert good.series_uid  # the series exists; only the unknown id failed


def test_progress_bar_only_on_a_terminal(tmp_path, store, capsys, monkeypatch):
    write_series(tmp_path / "data", slices=3)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, out, err = run_cli(capsys, "--store", store, "index", str(tmp_path / "data"))
    assert code == 0
    assert "indexing" in err and "/3 " in err
    assert "3 files seen" in out


@pytest.mark.parametrize(("orientation", "enhanced"), [("oblique", False), ("sagittal", True)])
def test_exported_nifti_matches_the_analytic_phantom_at_every_voxel(
    tmp_path, store, capsys, orientation, enhanced
):
    """Index -> export -> nibabel: every voxel, mapped through the file's RAS affine back to LPS,
    holds the phantom's known function of position (shuffled files, multi-frame too)."""
    import nibabel as nib

    from workstation.testing.phantoms import analytic_value, oblique_cosines, write_analytic_series

    chosen = oblique_cosines() if orientation == "oblique" else orientation
    series = write_analytic_series(
        tmp_path / "data", orientation=chosen, shape=(6, 10, 12), enhanced=enhanced
    )
    code, out, _ = run_cli(capsys, "--store", store, "index", str(tmp_path / "data"))
    assert code == 0 and "0 problems" in out
    out_file = tmp_path / "phantom.nii.gz"
    code, _, err = run_cli(capsys, "--store", store, "export", series.series_uid, str(out_file))
    assert code == 0, err

    image = nib.load(out_file)
    data = np.asarray(image.dataobj)
    assert data.shape == (12, 10, 6)
    i, j, k = np.meshgrid(*(np.arange(n) for n in data.shape), indexing="ij")
    ijk1 = np.stack([i, j, k, np.ones_like(i)], axis=-1).astype(float)
    ras = ijk1 @ image.affine.T
    lps = ras[..., :3] * np.array([-1.0, -1.0, 1.0])
    # Stored values are the function rounded to integers; the file's float32 affine moves a
    # centre by micrometres, so compare with the unrounded function: within half a unit. A
    # one-voxel slip on any axis changes the function by 0.9 or more here, which this catches.
    assert np.abs(data - analytic_value(lps)).max() <= 0.5 + 1e-4


def test_ls_gives_a_segmentation_its_frames_not_slices(tmp_path, store, capsys):
    ct = write_series(tmp_path / "data" / "ct", slices=4)
    assert run_cli(capsys, "--store", store, "index", str(tmp_path / "data"))[0] == 0
    out_dir = str(tmp_path / "run")
    code, _, err = run_cli(
        capsys, "--store", store, "run", "threshold.segment", "--series", ct.series_uid,
        "--param", "lower=-1024", "--out", out_dir,
    )  # fmt: skip
    assert code == 0, err
    code, out, _ = run_cli(capsys, "--store", store, "ls", "--json")
    series = {s["modality"]: s for s in json.loads(out)[0]["studies"][0]["series"]}
    seg = series["SEG"]
    code, out, _ = run_cli(capsys, "--store", store, "ls")
    line = next(line for line in out.splitlines() if f"{seg['series_id']}  SEG" in line)
    assert f"SEG  {seg['rows']}x{seg['columns']} ({seg['frames']} frames)" in line
    assert f"{ct.series_uid}  CT  8x6x4  4 instances" in out
