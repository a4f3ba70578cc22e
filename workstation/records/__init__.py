"""Patient records: FHIR R4 import, the records store area, timelines and synthetic records.

Importing this package does not import fhir.resources (that happens on the first import run), so
commands and the window that only read records start fast.
"""

from workstation.records.csv_labs import CsvMapping
from workstation.records.importer import ImportSummary, import_paths
from workstation.records.linking import LinkRule
from workstation.records.store import PatientNotFound, RecordsStore, load_patient_records
from workstation.records.timeline import Event, ObservationSeries, Span, StudyMarker, Timeline

__all__ = [
    "CsvMapping",
    "Event",
    "ImportSummary",
    "LinkRule",
    "ObservationSeries",
    "PatientNotFound",
    "RecordsStore",
    "Span",
    "StudyMarker",
    "Timeline",
    "import_paths",
    "load_patient_records",
]
