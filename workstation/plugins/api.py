"""Everything a plugin author imports, from one place: ``from workstation.plugins.api import ...``.

Importing this module is light (numpy and pluggy only), so a plugin's hook module may import it
at top level. The host implements plugin API `API_VERSION`; a plugin states the version it was
written for with a module-level ``WORKSTATION_PLUGIN_API = "1.0"``. A plugin is accepted when
the major versions match and its minor version is not newer than the host's.
"""

from __future__ import annotations

from workstation.core.refs import PatientRef, SeriesRef
from workstation.core.results import (
    RESULT_TYPES,
    Classification,
    DerivedVolume,
    GeneratedSeries,
    HeatMap,
    Label,
    LabelMap,
    Measurements,
    Report,
    Result,
    TimeSeries,
)
from workstation.core.volume import Geometry, Volume
from workstation.plugins.context import AnalysisInputs, Cancelled, RunContext
from workstation.plugins.declarations import (
    AnalysisSpec,
    DeclarationError,
    InputKind,
    PanelSpec,
    Parameter,
    ParameterError,
    ReaderSpec,
)
from workstation.plugins.hookspecs import ENTRY_POINT_GROUP, hookimpl
from workstation.plugins.training import TrainContext, TrainingRefused
from workstation.plugins.version import API_VERSION, API_VERSION_ATTRIBUTE

__all__ = [
    "API_VERSION",
    "API_VERSION_ATTRIBUTE",
    "ENTRY_POINT_GROUP",
    "RESULT_TYPES",
    "AnalysisInputs",
    "AnalysisSpec",
    "Cancelled",
    "Classification",
    "DeclarationError",
    "DerivedVolume",
    "GeneratedSeries",
    "Geometry",
    "HeatMap",
    "InputKind",
    "Label",
    "LabelMap",
    "Measurements",
    "PanelSpec",
    "Parameter",
    "ParameterError",
    "PatientRef",
    "ReaderSpec",
    "Report",
    "Result",
    "RunContext",
    "SeriesRef",
    "TimeSeries",
    "TrainContext",
    "TrainingRefused",
    "Volume",
    "hookimpl",
]
