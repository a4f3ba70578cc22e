"""The files a run writes: what each one is, its checksum, and safe, unique names for them."""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OUTPUT_KINDS = (
    "dicom_seg",
    "dicom_parametric_map",
    "dicom_series",
    "nifti",
    "json",
    "csv",
    "markdown",
    "png",
    "manifest",
)


@dataclass(frozen=True)
class OutputFile:
    """One written file. `kind` is one of `OUTPUT_KINDS`; `result` names the result it holds."""

    path: Path
    kind: str
    sha256: str
    size: int
    result: str = ""

    @classmethod
    def of(cls, path: Path, kind: str, result: str = "") -> OutputFile:
        """Describe a file just written (hashes it)."""
        return cls(Path(path), kind, sha256_of(path), Path(path).stat().st_size, result)

    def to_dict(self, relative_to: Path | None = None) -> dict[str, Any]:
        path = self.path
        if relative_to is not None:
            with contextlib.suppress(ValueError):
                path = self.path.relative_to(relative_to)
        return {
            "path": str(path),
            "kind": self.kind,
            "sha256": self.sha256,
            "size": self.size,
            "result": self.result,
        }


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Names:
    """Safe, unique file stems for the results of one run ('Liver mask' -> 'liver_mask',
    a second 'liver_mask' -> 'liver_mask_2')."""

    def __init__(self) -> None:
        self._used: set[str] = {"run"}

    def stem(self, name: str, fallback: str) -> str:
        base = re.sub(r"[^a-z0-9._-]+", "_", (name or "").strip().lower()).strip("._-") or fallback
        base = base[:80]
        stem, n = base, 2
        while stem in self._used:
            stem, n = f"{base}_{n}", n + 1
        self._used.add(stem)
        return stem
