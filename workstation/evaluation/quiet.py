"""Library warnings raised while scoring are kept off the terminal.

monai.metrics warns about its own deprecations (advice for library authors, not for someone
scoring a model) and warns "the prediction of class N is all 0" once per empty class. The scorers
note an empty prediction themselves, in words that name the case and the label, so both are
dropped; anything else is handed back to be kept in the case's notes.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

_FOR_LIBRARY_AUTHORS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
_NOTED_BY_THE_SCORER = (
    re.compile(r"(prediction|ground truth) of class \d+ is all 0"),
    re.compile(r"y_pred and y should be binarized"),
)


@contextmanager
def library_warnings() -> Iterator[list[str]]:
    """Catch every warning raised inside the block; on leaving it, the list yielded holds the
    distinct messages that say something about the data (in the order first raised)."""
    kept: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield kept
    for warning in caught:
        if issubclass(warning.category, _FOR_LIBRARY_AUTHORS):
            continue
        text = str(warning.message).strip()
        if any(pattern.search(text) for pattern in _NOTED_BY_THE_SCORER) or text in kept:
            continue
        kept.append(text)
