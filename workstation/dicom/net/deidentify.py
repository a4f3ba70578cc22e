"""De-identification: DICOM PS3.15 Basic Application Level Confidentiality Profile.

Two maintained libraries, each doing what it is best at:

- dicognito replaces every UID, person name, patient/accession/study ID, address and
  institution consistently (same input, same replacement) and shifts dates by one offset, so a
  study keeps its shape and its internal references. It is seeded with a secret kept in the store,
  so every export or send of one study from this store lands in the same de-identified study.
- dicognito does not cover the whole profile (descriptions, comments, patient age/size/weight,
  device serial numbers, overlays, private attributes ...). The profile's own action table
  (Table E.1-1, as shipped by dicom-anonymizer for the current edition of the standard) decides
  what happens to every attribute dicognito left unchanged: X removes it, Z empties it, D puts
  a dummy value, U (UIDs) is dicognito's.

Objects with burned-in annotation are refused: header de-identification cannot remove text
that is part of the pixels.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from functools import cache

from dicognito.anonymizer import Anonymizer
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

PROFILE_TABLE = "dicomanonymizer.dicom_anonymization_databases.dicomfields_2026c"
METHOD = "PS3.15 Basic Profile, Modified Dates Option; dicognito"


class DeidentificationError(ValueError):
    """An object that cannot be safely de-identified; the message says why."""


@cache
def profile_actions() -> tuple[dict[int, str], list[tuple[int, int, int, int, str]]]:
    """The profile's action for each tag: exact tags, and (group, element, mask) ranges such as
    the overlay and curve groups. Actions are the table's names: X, Z, D, U, Z_D, X_Z, ..."""
    table = importlib.import_module(PROFILE_TABLE)
    exact: dict[int, str] = {}
    masked: list[tuple[int, int, int, int, str]] = []
    for name in dir(table):
        if not name.endswith("_TAGS") or name == "ALL_TAGS":
            continue
        action = name.removesuffix("_TAGS").replace("_STAR", "*")
        for entry in getattr(table, name):
            if len(entry) == 2:
                exact[(entry[0] << 16) | entry[1]] = action
            else:
                group, element, group_mask, element_mask = entry
                masked.append((group, element, group_mask, element_mask, action))
    return exact, masked


def action_for(tag: int) -> str | None:
    exact, masked = profile_actions()
    if tag in exact:
        return exact[tag]
    group, element = tag >> 16, tag & 0xFFFF
    for g, e, gm, em, action in masked:
        if group & gm == g and element & em == e:
            return action
    return None


class Deidentifier:
    """Reuse one instance for a whole export or send: replacements stay consistent across it,
    and across every Deidentifier made with the same secret."""

    def __init__(self, secret: str) -> None:
        self._anonymizer = Anonymizer(seed=secret)
        # the replacement UIDs handed out, for the audit log ("sent as study ...")
        self.study_uids: dict[str, None] = {}
        self.series_uids: dict[str, None] = {}

    def replacements(self) -> dict[str, list[str]]:
        """The replacement study and series UIDs of everything de-identified so far."""
        return {"studies": list(self.study_uids), "series": list(self.series_uids)}

    def __call__(self, dataset: Dataset) -> Dataset:
        return self.apply(dataset)

    def apply(self, dataset: Dataset) -> Dataset:
        """De-identify in place and return the dataset."""
        if str(dataset.get("BurnedInAnnotation", "")).upper() == "YES":
            raise DeidentificationError(
                "BurnedInAnnotation is YES: identifying text is part of the pixels"
            )
        dataset.remove_private_tags()
        # Pure removals first, whatever dicognito would do (it replaces some X attributes).
        _remove(dataset, lambda tag: action_for(tag) == "X")
        before = [(owner, tag, owner[tag].value) for owner, tag in _profile_elements(dataset)]
        self._anonymizer.anonymize(dataset)
        for owner, tag, value in before:
            if tag in owner and owner[tag].value == value:
                # dicognito did not replace it: the profile's action decides
                _apply_action(owner, owner[tag], action_for(tag) or "")
        for keyword, seen in (
            ("StudyInstanceUID", self.study_uids),
            ("SeriesInstanceUID", self.series_uids),
        ):
            if keyword in dataset:
                seen[str(dataset.get(keyword))] = None
        dataset.PatientIdentityRemoved = "YES"
        dataset.DeidentificationMethod = METHOD
        dataset.DeidentificationMethodCodeSequence = DicomSequence(
            [
                _code("113100", "Basic Application Confidentiality Profile"),
                _code("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
            ]
        )
        return dataset


def _profile_elements(dataset: Dataset) -> Iterator[tuple[Dataset, int]]:
    """Every element (nested ones too) whose tag the profile replaces or empties."""
    for element in list(dataset):
        action = action_for(int(element.tag))
        if action and action not in ("X", "U"):
            yield dataset, int(element.tag)
        if element.VR == "SQ" and element.value:
            for item in element.value:
                yield from _profile_elements(item)


def _remove(dataset: Dataset, should_remove) -> None:
    for element in list(dataset):
        if should_remove(int(element.tag)):
            del dataset[element.tag]
        elif element.VR == "SQ" and element.value:
            for item in element.value:
                _remove(item, should_remove)


def _apply_action(owner: Dataset, element: DataElement, action: str) -> None:
    if "U" in action and (element.VR == "UI" or action.endswith("U*")):
        return  # dicognito replaced the UIDs (also those inside referencing sequences)
    if "Z" in action:
        element.value = DicomSequence() if element.VR == "SQ" else _empty(element.VR)
    elif "D" in action:
        element.value = _dummy(element.VR)
    elif "X" in action:
        del owner[element.tag]


def _empty(vr: str):
    return b"" if vr in ("OB", "OW", "OF", "OD", "OL", "OV", "UN") else None


def _dummy(vr: str):
    if vr == "SQ":
        return DicomSequence()
    if vr in ("IS", "DS"):
        return "0"
    if vr in ("US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"):
        return 0
    if vr in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
        return b""
    if vr == "AS":
        return "000Y"
    if vr in ("DA", "DT", "TM"):
        return {"DA": "19000101", "DT": "19000101000000", "TM": "000000"}[vr]
    if vr == "PN":
        return "ANONYMOUS"
    return "ANONYMIZED"


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item
