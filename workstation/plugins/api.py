"""Everything a plugin author imports, from one place: ``from workstation.plugins.api import ...``.

Importing this module is light (numpy and pluggy only), so a plugin's hook module may import it
at top level. The host implements plugin API `API_VERSION`; a plugin states the version it was
written for with a module-level ``WORKSTATION_PLUGIN_API = "1.0"``. A plugin is accepted when
the major versions match and its minor version is not newer than the host's.

The shared model helpers of `workstation.models` (loading MONAI bundles and checkpoints, trust,
device and precision, sliding-window inference, the model cache) are importable from here too.
They load on first use (module `__getattr__`), so importing this module imports neither
`workstation.models` nor torch or monai; torch and monai load only when a helper runs a model.
`trust` and `untrust` are left out on purpose: trusting a model is the user's decision, made
with `workstation models trust PATH`, never a plugin's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
from workstation.plugins.errors import InputRefused, RunRefused, UserFacingError
from workstation.plugins.hookspecs import ENTRY_POINT_GROUP, hookimpl
from workstation.plugins.training import (
    REFUSED_CHECKPOINT_EXISTS,
    REFUSED_DEVICE,
    REFUSED_EPOCHS,
    REFUSED_INPUT,
    REFUSED_NO_CHECKPOINT,
    REFUSED_NO_SERIES,
    TrainContext,
    TrainingRefused,
)
from workstation.plugins.version import API_VERSION, API_VERSION_ATTRIBUTE

if TYPE_CHECKING:  # pragma: no cover - for type checkers; at run time they load on first use
    from workstation.models import (
        CONFIG_KEY,
        PRECISIONS,
        BundleBuildError,
        BundleError,
        BundleMetadata,
        BundleReview,
        CacheStats,
        CheckpointError,
        InferenceCancelled,
        LoadedBundle,
        ModelCache,
        ModelError,
        ModelKey,
        PreprocessedSeries,
        SourceGridPrediction,
        TrustStatus,
        UntrustedModel,
        WindowSettings,
        autocast_context,
        cached_model,
        fallback_plan,
        field_of_view_note,
        find_weights,
        is_demo_weights,
        is_trusted,
        list_trusted,
        load_bundle,
        load_checkpoint,
        load_model,
        model_cache,
        postprocess_to_source,
        prefers_channels_last,
        prepare_network,
        preprocess_series,
        read_checkpoint_config,
        read_metadata,
        require_trusted,
        resolve_precision,
        review_bundle,
        sliding_window,
        suited_num_workers,
        to_channels_last,
        trust_command,
        trust_status,
        version_warnings,
        weights_signature,
        window_settings,
    )

__all__ = [
    "API_VERSION",
    "API_VERSION_ATTRIBUTE",
    "CONFIG_KEY",
    "ENTRY_POINT_GROUP",
    "PRECISIONS",
    "REFUSED_CHECKPOINT_EXISTS",
    "REFUSED_DEVICE",
    "REFUSED_EPOCHS",
    "REFUSED_INPUT",
    "REFUSED_NO_CHECKPOINT",
    "REFUSED_NO_SERIES",
    "RESULT_TYPES",
    "AnalysisInputs",
    "AnalysisSpec",
    "BundleBuildError",
    "BundleError",
    "BundleMetadata",
    "BundleReview",
    "CacheStats",
    "Cancelled",
    "CheckpointError",
    "Classification",
    "DeclarationError",
    "DerivedVolume",
    "GeneratedSeries",
    "Geometry",
    "HeatMap",
    "InferenceCancelled",
    "InputKind",
    "InputRefused",
    "Label",
    "LabelMap",
    "LoadedBundle",
    "Measurements",
    "ModelCache",
    "ModelError",
    "ModelKey",
    "PanelSpec",
    "Parameter",
    "ParameterError",
    "PatientRef",
    "PreprocessedSeries",
    "ReaderSpec",
    "Report",
    "Result",
    "RunContext",
    "RunRefused",
    "SeriesRef",
    "SourceGridPrediction",
    "TimeSeries",
    "TrainContext",
    "TrainingRefused",
    "TrustStatus",
    "UntrustedModel",
    "UserFacingError",
    "Volume",
    "WindowSettings",
    "autocast_context",
    "cached_model",
    "fallback_plan",
    "field_of_view_note",
    "find_weights",
    "hookimpl",
    "is_demo_weights",
    "is_trusted",
    "list_trusted",
    "load_bundle",
    "load_checkpoint",
    "load_model",
    "model_cache",
    "postprocess_to_source",
    "prefers_channels_last",
    "prepare_network",
    "preprocess_series",
    "read_checkpoint_config",
    "read_metadata",
    "require_trusted",
    "resolve_precision",
    "review_bundle",
    "sliding_window",
    "suited_num_workers",
    "to_channels_last",
    "trust_command",
    "trust_status",
    "version_warnings",
    "weights_signature",
    "window_settings",
]

# Names of __all__ not defined above: the `workstation.models` helpers, served by `__getattr__`.
MODEL_NAMES = frozenset(name for name in __all__ if name not in globals())
# In `workstation.models` but deliberately not here: the user's decisions (`workstation models`).
USER_ONLY_MODEL_NAMES = ("trust", "untrust")


def __getattr__(name: str) -> Any:
    """Import `workstation.models` the first time one of its names is asked for."""
    if name in MODEL_NAMES:
        import workstation.models

        value = getattr(workstation.models, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | MODEL_NAMES)
