"""getscu's private folders in the store: a live retrieval's folder is never cleaned away.

The store may sit on a shared drive used from several hosts or containers, where a process id
says nothing; a folder is a live retrieval's while the lock file beside it is locked (flock).
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
import textwrap

from workstation.dicom.net import dcmtk_get
from workstation.dicom.net.dcmtk_get import (
    LOCK_SUFFIX,
    claim_get_folder,
    clean_get_folders,
    release_get_folder,
)
from workstation.dicom.net.receive import FILES_DIR, INCOMING_DIR, clean_incoming

# Another process (as on another host) holding a folder's lock until its stdin closes.
_HOLDER = textwrap.dedent(
    """
    import fcntl, os, sys
    descriptor = os.open(sys.argv[1], os.O_RDWR)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.read()
    """
)


def _folder(incoming, name: str, lock: bool = True):
    folder = incoming / name
    folder.mkdir(parents=True)
    (folder / "CT.1.2.3").write_bytes(b"half an object")
    if lock:
        (incoming / f"{name}{LOCK_SUFFIX}").touch()
    return folder


def test_a_folder_locked_by_another_process_survives_cleanup(tmp_path):
    incoming = tmp_path / FILES_DIR / INCOMING_DIR
    live = _folder(incoming, "get-live")
    stale = _folder(incoming, "get-stale")  # its retrieval was killed: nobody holds the lock
    unlocked = _folder(incoming, "get-old", lock=False)  # no lock file at all
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(incoming / f"get-live{LOCK_SUFFIX}")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert clean_get_folders(incoming) == 2
        assert live.is_dir() and (live / "CT.1.2.3").exists()
        assert (incoming / f"get-live{LOCK_SUFFIX}").exists()
        assert not stale.exists() and not (incoming / f"get-stale{LOCK_SUFFIX}").exists()
        assert not unlocked.exists()
    finally:
        holder.communicate("", timeout=30)
    # the holder is gone (its lock with it): now the folder is a dead retrieval's
    assert clean_incoming(tmp_path) == 1
    assert not live.exists() and not (incoming / f"get-live{LOCK_SUFFIX}").exists()


def test_a_claimed_folder_is_held_until_released(tmp_path):
    incoming = tmp_path / FILES_DIR / INCOMING_DIR
    work, lock = claim_get_folder(incoming)
    lock_path = incoming / f"{work.name}{LOCK_SUFFIX}"
    try:
        assert work.is_dir() and lock_path.exists()
        assert clean_get_folders(incoming) == 0  # another open of the lock file cannot take it
        assert work.is_dir()
        (incoming / f"get-orphan{LOCK_SUFFIX}").touch()  # left by a retrieval killed early
        clean_get_folders(incoming)
        assert not (incoming / f"get-orphan{LOCK_SUFFIX}").exists() and lock_path.exists()
    finally:
        release_get_folder(work, lock)
    assert not work.exists() and not lock_path.exists()
    assert list(incoming.iterdir()) == []


def test_a_claim_whose_lock_file_a_cleanup_deleted_starts_over(tmp_path, monkeypatch):
    """A cleanup can take a just-made lock file before its maker locks it, and delete it; the
    maker must not go on holding a lock on a file nobody else can see."""
    incoming = tmp_path / FILES_DIR / INCOMING_DIR
    incoming.mkdir(parents=True)
    real_flock = fcntl.flock
    raced = []

    def flock_after_a_cleanup(descriptor, operation):
        if not raced:
            raced.extend(incoming.glob(f"*{LOCK_SUFFIX}"))
            clean_get_folders(incoming)  # runs first, takes the fresh lock file and deletes it
        return real_flock(descriptor, operation)

    monkeypatch.setattr(dcmtk_get.fcntl, "flock", flock_after_a_cleanup)
    work, lock = claim_get_folder(incoming)
    monkeypatch.undo()
    try:
        assert len(raced) == 1 and not raced[0].exists()  # the first try's file is gone
        assert sorted(p.name for p in incoming.iterdir()) == [work.name, work.name + LOCK_SUFFIX]
        assert clean_get_folders(incoming) == 0 and work.is_dir()
    finally:
        release_get_folder(work, lock)
