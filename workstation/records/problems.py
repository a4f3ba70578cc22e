"""Import problems: what went wrong, where (file, entry/line/row), and whether it was kept."""

from __future__ import annotations

from dataclasses import asdict, dataclass


class ResourceProblem(ValueError):
    """One resource cannot be imported; the message says why, in words a user can act on."""


@dataclass(frozen=True)
class ImportProblem:
    source: str  # the file
    location: str  # "entry 3", "line 17", "row 4", or "" for the whole file
    resource: str  # "Observation/abc" when known
    severity: str  # "error": not imported; "warning": imported with a caveat
    reason: str

    def __str__(self) -> str:
        where = ", ".join(part for part in (self.location, self.resource) if part)
        return f"{self.source}: {where + ': ' if where else ''}{self.reason}"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)
