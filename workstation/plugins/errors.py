"""Errors whose message is meant for the user, and the refusals among them.

The host tells a user's problem (an untrusted bundle, a checkpoint that does not fit, a series
of the wrong modality) from a bug by the class of the exception: a `UserFacingError` ends the
run with its message alone, shown as it is (the traceback is kept in the run record, not
printed); any other exception is unexpected and its traceback is shown too. A `RunRefused`
means nothing was done because the run could not sensibly start: the outcome is "refused"
(exit code 2), not "failed".

This module imports nothing, so the host and `workstation.models` may both build on it.
"""

from __future__ import annotations


class UserFacingError(Exception):
    """Its message tells the user what is wrong and what to do, naming the file, series or
    parameter; the run fails with that message and no traceback is printed. Subclass it (or
    raise it) for problems with the user's data, weights or settings, not for bugs."""


class RunRefused(UserFacingError):
    """The run was refused before any work: outcome "refused", exit code 2."""


class InputRefused(RunRefused):
    """Raise from an analysis when it will not run on the input it was given (another modality,
    a series too small for the model, a missing acquisition); the message names the series and
    says what the analysis takes. The run is recorded as refused, with no traceback shown."""
