"""The plugin's declaration: what the workstation lists, with no model code imported.

The analysis runs `workstation_records_rnn.inference:run`, which imports torch and captum only
when the user runs it.
"""

from __future__ import annotations

from workstation.plugins.api import AnalysisSpec, InputKind, Parameter, hookimpl
from workstation_records_rnn import __version__
from workstation_records_rnn.config import ANALYSIS_ID, DEMO_WEIGHTS

WORKSTATION_PLUGIN_API = "1.0"


@hookimpl
def workstation_analyses() -> list[AnalysisSpec]:
    return [
        AnalysisSpec(
            id=ANALYSIS_ID,
            title="Acute renal failure risk over time (records GRU)",
            version=__version__,
            entry="workstation_records_rnn.inference:run",
            description=(
                "Reads the patient's creatinine, blood pressure, glucose, HbA1c and BMI history "
                "and the onset of kidney disease, hypertension and diabetes, in 30-day bins, and "
                "gives the probability of acute renal failure within 12 months at each bin, with "
                "integrated-gradient attributions per variable and time. The shipped demo weights "
                "were trained on synthetic records only (see the model card)."
            ),
            inputs=(InputKind.PATIENT_RECORDS,),
            parameters=(
                Parameter(
                    "ig_steps",
                    "int",
                    32,
                    min=4,
                    max=512,
                    help="Integration steps for the attributions; more is more exact and slower.",
                    label="Attribution steps",
                ),
            ),
            returns=("time_series", "report"),
            device="prefers_gpu",
            weights=f"workstation_records_rnn:{DEMO_WEIGHTS}",
            timeout=600.0,
        )
    ]
