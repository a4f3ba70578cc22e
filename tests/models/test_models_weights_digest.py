"""The weights hash recorded with every run (`weights_sha256`): kept per process so the same
weights are not read again, but never stale after the file was rewritten."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

import workstation.models.hashing as hashing
from workstation.plugins.declarations import WEIGHTS_DIGESTS_KEPT, weights_sha256

HOUR_NS = 3600 * 10**9


def write_with_mtime(path: Path, content: bytes, mtime_ns: int) -> None:
    path.write_bytes(content)
    os.utime(path, ns=(mtime_ns, mtime_ns))


@pytest.fixture
def reads(monkeypatch) -> list[Path]:
    """Every file `weights_sha256` reads."""
    seen: list[Path] = []
    real = hashing.file_sha256

    def counting(path: Path) -> str:
        seen.append(Path(path))
        return real(path)

    monkeypatch.setattr(hashing, "file_sha256", counting)
    return seen


@pytest.fixture
def settled(monkeypatch) -> None:
    """Treat files as written long ago, so their digests are kept (as for real weights files,
    which are seldom rewritten seconds before a run)."""
    monkeypatch.setattr("workstation.models.cache.RACY_WINDOW_S", -60.0)


def test_rewrite_in_place_with_the_old_mtime_gives_the_new_hash(tmp_path):
    weights = tmp_path / "model.pt"
    old_mtime = time.time_ns() - HOUR_NS
    write_with_mtime(weights, b"A" * 4096, old_mtime)
    assert weights_sha256(weights) == hashlib.sha256(b"A" * 4096).hexdigest()
    write_with_mtime(weights, b"B" * 4096, old_mtime)  # same size, same mtime, same inode
    assert weights_sha256(weights) == hashlib.sha256(b"B" * 4096).hexdigest()


def test_unchanged_weights_are_read_once_and_a_replacement_is_noticed(tmp_path, reads, settled):
    weights = tmp_path / "model.pt"
    old_mtime = time.time_ns() - HOUR_NS
    write_with_mtime(weights, b"A" * 4096, old_mtime)
    first = weights_sha256(weights)
    assert weights_sha256(weights) == first
    assert reads == [weights]

    # Saved beside and renamed over (how a training run replaces its checkpoint), old mtime kept.
    replacement = tmp_path / "model.pt.tmp"
    write_with_mtime(replacement, b"B" * 4096, old_mtime)
    os.replace(replacement, weights)
    assert weights.stat().st_mtime_ns == old_mtime
    assert weights_sha256(weights) == hashlib.sha256(b"B" * 4096).hexdigest()


def test_bundle_folder_digest_follows_a_rewritten_file(tmp_path, settled):
    bundle = tmp_path / "bundle"
    (bundle / "models").mkdir(parents=True)
    old_mtime = time.time_ns() - HOUR_NS
    write_with_mtime(bundle / "models" / "model.pt", b"A" * 64, old_mtime)
    before = weights_sha256(bundle)
    replacement = tmp_path / "model.pt.new"
    write_with_mtime(replacement, b"B" * 64, old_mtime)
    os.replace(replacement, bundle / "models" / "model.pt")
    after = weights_sha256(bundle)
    assert after is not None and after != before
    assert after == hashing.content_digest(bundle).sha256


def test_only_the_most_recent_digests_are_kept(tmp_path, reads, settled):
    files = []
    for index in range(WEIGHTS_DIGESTS_KEPT + 6):
        path = tmp_path / f"model-{index}.pt"
        path.write_bytes(index.to_bytes(4, "little"))
        files.append(path)
        weights_sha256(path)
    reads.clear()
    weights_sha256(files[-1])
    assert reads == []  # recent: still kept
    weights_sha256(files[0])
    assert reads == [files[0]]  # the oldest was let go: read again


def test_missing_or_absent_weights_have_no_hash(tmp_path):
    assert weights_sha256(None) is None
    assert weights_sha256(tmp_path / "gone.pt") is None
