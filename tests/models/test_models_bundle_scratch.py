"""The temporary folder a bundle gets when the plugin gives none: it lasts as long as the loaded
bundle (a kept model may write there) and no longer, so reloads and restarts leave nothing in
the system's temporary folder."""

from __future__ import annotations

import gc
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from workstation.models import BundleBuildError, ModelCache, load_bundle


@pytest.fixture
def system_tmp(tmp_path: Path, monkeypatch) -> Path:
    """The system temporary folder, private to this test so other processes' folders don't
    count."""
    folder = tmp_path / "system-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def bundle_folders(system_tmp: Path) -> list[Path]:
    return sorted(system_tmp.glob("workstation-bundle-*"))


def test_folder_is_removed_when_the_bundle_is_collected(make_bundle, system_tmp):
    loaded = load_bundle(make_bundle(), "cpu", trusted_check=False)
    scratch = loaded.scratch_dir
    assert scratch is not None and scratch.parent == system_tmp and scratch.is_dir()
    (scratch / "eval").mkdir()
    (scratch / "eval" / "pred.nii.gz").write_bytes(b"output the config redirected here")
    del loaded
    gc.collect()
    assert not scratch.exists()
    assert bundle_folders(system_tmp) == []


def test_reload_through_the_cache_leaves_no_stale_folder(make_bundle, system_tmp):
    bundle = make_bundle()
    cache = ModelCache()

    def load():
        return load_bundle(bundle, "cpu", trusted_check=False)

    with cache.use(bundle, "cpu", "fp32", load) as first:
        old_scratch = first.scratch_dir
    del first
    assert old_scratch.is_dir()  # kept with the model for the next run
    with cache.use(bundle, "cpu", "fp32", load) as again:
        assert again.scratch_dir == old_scratch  # reused, folder and all
    del again

    (bundle / "configs" / "notes.json").write_text("{}")  # any changed file reloads the bundle
    with cache.use(bundle, "cpu", "fp32", load) as second:
        new_scratch = second.scratch_dir
    del second
    assert cache.stats().reloads == 1
    assert new_scratch != old_scratch
    assert not old_scratch.exists()  # the dropped entry took its folder with it
    assert bundle_folders(system_tmp) == [new_scratch]

    cache.clear()
    gc.collect()
    assert bundle_folders(system_tmp) == []


def test_folder_given_by_the_caller_is_left_alone(make_bundle, tmp_path, system_tmp):
    scratch = tmp_path / "run-scratch"
    loaded = load_bundle(make_bundle(), "cpu", trusted_check=False, scratch_dir=scratch)
    assert loaded.scratch_dir == scratch
    del loaded
    gc.collect()
    assert scratch.is_dir()
    assert bundle_folders(system_tmp) == []


def test_bundle_that_fails_to_build_leaves_no_folder(make_bundle, system_tmp):
    bundle = make_bundle(network_def={"_target_": "NoSuchNetwork", "spatial_dims": 3})
    with pytest.raises(BundleBuildError):
        load_bundle(bundle, "cpu", trusted_check=False)
    assert bundle_folders(system_tmp) == []


def test_folder_of_a_bundle_kept_until_exit_is_removed_at_exit(make_bundle, tmp_path):
    bundle = make_bundle()
    system_tmp = tmp_path / "worker-tmp"
    system_tmp.mkdir()
    script = (
        "import sys, tempfile\n"
        "from workstation.models import load_bundle\n"
        f"tempfile.tempdir = {str(system_tmp)!r}\n"
        f"KEPT = load_bundle({str(bundle)!r}, 'cpu', trusted_check=False)\n"
        "print(KEPT.scratch_dir)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    scratch = Path(done.stdout.strip().splitlines()[-1])
    assert scratch.parent == system_tmp
    assert not scratch.exists()
    assert bundle_folders(system_tmp) == []
