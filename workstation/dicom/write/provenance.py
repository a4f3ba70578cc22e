"""What made a DICOM object, in the words its header uses.

Every object the workstation writes (SEG, parametric map, derived or generated series) says which
analysis made it, from which plugin and version, and whether demo weights were used, so a reader
of the file in any viewer or PACS can tell where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydicom.uid import generate_uid

MANUFACTURER = "Workstation"
DEMO_NOTE = "DEMO WEIGHTS - NOT FOR CLINICAL USE"


@dataclass(frozen=True)
class Provenance:
    """The analysis behind an object.

    `parameters` are kept as text in the algorithm identification; `demo_weights` marks every
    description as made with demo weights; `uses_model` says the algorithm is a trained model
    (its algorithm family becomes Artificial Intelligence)."""

    analysis_id: str
    analysis_version: str
    title: str = ""
    plugin: str = ""
    distribution: str = ""
    workstation_version: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    demo_weights: bool = False
    uses_model: bool = False
    weights: str = ""  # the weights' file or bundle, named in DerivationDescription

    @property
    def algorithm_name(self) -> str:
        return self.title or self.analysis_id

    @property
    def software_versions(self) -> tuple[str, ...]:
        """SoftwareVersions values: the workstation, then the analysis (its plugin) with version."""
        plugin = (
            f" ({self.distribution or self.plugin})" if (self.distribution or self.plugin) else ""
        )
        analysis = _lo(f"{self.analysis_id} {self.analysis_version}{plugin}")
        host = f"workstation {self.workstation_version}".strip()
        return (host, analysis)

    @property
    def model_name(self) -> str:
        """ManufacturerModelName: the analysis id (LO, 64 characters)."""
        return _lo(self.analysis_id)

    @property
    def creator_name(self) -> str:
        """ContentCreatorName as a person-name value: family = analysis id, given = version."""
        return _lo(f"{self.analysis_id}^{self.analysis_version}")

    def describe(self, what: str) -> str:
        """'<what> by <title> <version>' with the demo note when it applies (LO, 64 chars,
        cut at a word with '...', not mid-word)."""
        text = f"{what} by {self.algorithm_name} {self.analysis_version}"
        if self.demo_weights:
            text = f"{DEMO_NOTE}: {text}"
        return fit_words(text.replace("\\", "/"), 64)

    def derivation(self) -> str:
        """DerivationDescription (ST, 1024 characters): plugin, version, parameters, the demo
        note and the weights. Long parameter lists are cut, never the note or the weights."""
        params = ", ".join(f"{k}={v}" for k, v in sorted(self.parameters.items()))
        text = (
            f"Made by analysis {self.analysis_id} {self.analysis_version}"
            f" (plugin {self.distribution or self.plugin or 'unknown'}) on the workstation"
            f" {self.workstation_version or ''}".rstrip()
        )
        tail = f"; {DEMO_NOTE}" if self.demo_weights else ""
        if self.weights:
            tail += f"; weights: {self.weights}"
        if params:
            text = fit_words(f"{text}; parameters: {params}", max(1024 - len(tail), len(text)))
        return (text + tail)[:1024]

    def series_description(self, base: str) -> str:
        """SeriesDescription (LO): `base`, prefixed with 'DEMO' when demo weights were used."""
        return _lo(f"DEMO {base}" if self.demo_weights else base)


def new_uid() -> str:
    """A new globally unique UID for a series, instance or frame of reference."""
    return str(generate_uid())


def fit_words(text: str, limit: int) -> str:
    """`text` cut to `limit` characters at a word boundary, ending with '...' when cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 3]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:") + "..."


def _lo(text: str) -> str:
    """Fit a DICOM LO value: 64 characters, no backslash."""
    return text.replace("\\", "/")[:64]
