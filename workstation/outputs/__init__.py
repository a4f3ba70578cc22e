"""Writing a run's results to its run folder: DICOM (SEG, parametric map, derived/generated
series), NIfTI, JSON/CSV, Markdown, and the ``run.json`` manifest.

    from workstation.outputs import RunInfo, write_results
    files = write_results(results, out_dir, RunInfo(analysis_id="threshold.segment", ...))

Importing this package is light; pydicom, highdicom and nibabel load when a writer runs.
"""

from workstation.outputs.files import OUTPUT_KINDS, OutputFile
from workstation.outputs.run_info import RunInfo
from workstation.outputs.write import (
    MANIFEST_NAME,
    WRITERS,
    OutputError,
    write_manifest,
    write_results,
)

__all__ = [
    "MANIFEST_NAME",
    "OUTPUT_KINDS",
    "WRITERS",
    "OutputError",
    "OutputFile",
    "RunInfo",
    "write_manifest",
    "write_results",
]
