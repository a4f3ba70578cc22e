"""DICOM writers: segmentations, parametric maps and new image series made from results.

Each writer gives its object new UIDs, references its source and says in its header which
analysis (plugin, version) made it. highdicom and pydicom are imported when a writer runs.
"""

from workstation.dicom.write.provenance import DEMO_NOTE, Provenance, new_uid
from workstation.dicom.write.sources import SourceProblem, SourceSeries, read_source_series

__all__ = [
    "DEMO_NOTE",
    "Provenance",
    "SourceProblem",
    "SourceSeries",
    "new_uid",
    "read_source_series",
]
