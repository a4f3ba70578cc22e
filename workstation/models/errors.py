"""Errors the model helpers raise. Each message is meant to be shown to the user as it is:
it names the bundle or file, what is wrong and what to do, never a traceback from deep in MONAI."""

from __future__ import annotations

from workstation.plugins.errors import RunRefused, UserFacingError


class ModelError(UserFacingError):
    """Base class: a model (bundle or checkpoint) could not be used. A `UserFacingError`: a run
    that raises it fails with its message alone, no traceback shown."""


class UntrustedModel(ModelError, RunRefused):
    """The bundle or checkpoint is not trusted (unknown, or a file changed since it was trusted).
    A `RunRefused`: nothing from the model ran, so the run is refused (exit code 2).

    `review` lists what the bundle would execute once loaded, so the user can check it first."""

    def __init__(self, message: str, review: str = "") -> None:
        super().__init__(message if not review else f"{message}\n\n{review}")
        self.review = review


class BundleError(ModelError):
    """The folder is not a usable MONAI bundle (missing configs, missing weights, bad JSON)."""


class BundleBuildError(BundleError):
    """The bundle's config could not be built here; `entry` is the failing config id."""

    def __init__(self, message: str, entry: str = "") -> None:
        super().__init__(message)
        self.entry = entry


class CheckpointError(ModelError):
    """A checkpoint file could not be loaded into the network (format, keys, shapes)."""


class InferenceCancelled(ModelError):
    """The user cancelled a running inference; raised between sliding-window batches."""
