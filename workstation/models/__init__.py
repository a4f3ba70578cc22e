"""What every MONAI plugin shares: trusted bundles and checkpoints, device and precision,
sliding-window inference with an out-of-memory fallback. Public API for built-in and
third-party plugins alike: every name here but `trust` and `untrust` (the user's decisions, made
with `workstation models trust`) is re-exported from `workstation.plugins.api`, and documented in
docs/writing-plugins.md ("Models (MONAI)").

Importing this package never imports torch or monai; they load when a model is built or run.

    bundle = load_model(ctx.weights, ctx.device, scratch_dir=ctx.scratch_dir)  # refuses untrusted
    with autocast_context(ctx.device, "auto"):
        ...
    logits = sliding_window(bundle.network, image, (96, 96, 96), sw_batch_size=4, overlap=0.5,
                            context=ctx, progress_range=(0.1, 0.9))  # device, progress, cancel

Keeping a loaded model for the next run (see `cache`; the loader runs only on a miss):

    with cached_model(weights, ctx.device, precision, lambda: my_load(weights, ctx.device),
                      namespace="my_plugin.analysis") as model:
        ...
"""

from workstation.models.bundle import LoadedBundle, find_weights, load_bundle, load_model
from workstation.models.bundle_transforms import (
    PreprocessedSeries,
    SourceGridPrediction,
    WindowSettings,
    postprocess_to_source,
    preprocess_series,
    window_settings,
)
from workstation.models.cache import (
    CacheStats,
    ModelCache,
    ModelKey,
    cached_model,
    model_cache,
    weights_signature,
)
from workstation.models.checkpoint import (
    CONFIG_KEY,
    is_demo_weights,
    load_checkpoint,
    read_checkpoint_config,
)
from workstation.models.errors import (
    BundleBuildError,
    BundleError,
    CheckpointError,
    InferenceCancelled,
    ModelError,
    UntrustedModel,
)
from workstation.models.field_of_view import field_of_view_note
from workstation.models.metadata import BundleMetadata, read_metadata, version_warnings
from workstation.models.precision import (
    PRECISIONS,
    autocast_context,
    prefers_channels_last,
    prepare_network,
    resolve_precision,
    suited_num_workers,
    to_channels_last,
)
from workstation.models.review import BundleReview, review_bundle
from workstation.models.sliding import fallback_plan, sliding_window
from workstation.models.trust import (
    TrustStatus,
    is_trusted,
    list_trusted,
    require_trusted,
    trust,
    trust_command,
    trust_status,
    untrust,
)

__all__ = [
    "CONFIG_KEY",
    "PRECISIONS",
    "BundleBuildError",
    "BundleError",
    "BundleMetadata",
    "BundleReview",
    "CacheStats",
    "CheckpointError",
    "InferenceCancelled",
    "LoadedBundle",
    "ModelCache",
    "ModelError",
    "ModelKey",
    "PreprocessedSeries",
    "SourceGridPrediction",
    "TrustStatus",
    "UntrustedModel",
    "WindowSettings",
    "autocast_context",
    "cached_model",
    "fallback_plan",
    "field_of_view_note",
    "find_weights",
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
    "trust",
    "trust_command",
    "trust_status",
    "untrust",
    "version_warnings",
    "weights_signature",
    "window_settings",
]
