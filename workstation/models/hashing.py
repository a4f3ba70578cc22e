"""Content hashes of a bundle folder or a checkpoint file, used to decide whether it is trusted.

The digest covers every file (sorted relative paths and their bytes, SHA-256), so adding, removing,
renaming or editing any file, including Python code in `scripts/`, changes it. Per-file hashes
are kept too, so a voided trust can say which file changed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ContentDigest:
    """`sha256` over the whole content; `files` maps relative POSIX path -> that file's SHA-256."""

    sha256: str
    files: dict[str, str]

    def changes_since(self, earlier: dict[str, str]) -> list[str]:
        """Human-readable differences from an earlier per-file map: changed, added, removed."""
        changes = [
            f"{name} changed"
            for name in sorted(earlier)
            if name in self.files and self.files[name] != earlier[name]
        ]
        changes += [f"{name} added" for name in sorted(set(self.files) - set(earlier))]
        changes += [f"{name} removed" for name in sorted(set(earlier) - set(self.files))]
        return changes


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def content_files(root: Path) -> list[tuple[str, Path]]:
    """Every regular file under `root` as (relative POSIX path, path), sorted by relative path.

    Symlinked folders are followed (their code runs as the bundle's), each real folder once so a
    link cycle cannot loop. A single file is its own content."""
    root = Path(root)
    if root.is_file():
        return [(root.name, root)]
    found: list[tuple[str, Path]] = []
    seen: set[str] = set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders[:] = []
            continue
        seen.add(real)
        for name in names:
            path = Path(folder) / name
            if path.is_file():
                found.append((path.relative_to(root).as_posix(), path))
    return sorted(found)


def content_digest(root: Path) -> ContentDigest:
    """Hash a bundle folder (every file) or a checkpoint file."""
    total = hashlib.sha256()
    files: dict[str, str] = {}
    for relative, path in content_files(root):
        file_hash = file_sha256(path)
        files[relative] = file_hash
        name = relative.encode("utf-8")
        total.update(len(name).to_bytes(8, "little") + name + bytes.fromhex(file_hash))
    return ContentDigest(sha256=total.hexdigest(), files=files)
