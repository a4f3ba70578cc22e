"""A note for results from a series far smaller than a model was trained on."""

from __future__ import annotations

from typing import Any

import numpy as np


def field_of_view_note(volume: Any, minimum_mm: float, trained_on: str) -> str | None:
    """None when the series spans at least `minimum_mm` along some axis; else a sentence for
    the results saying how much it covers and what the weights saw (`trained_on`, e.g. "bodies
    of about 200 mm and more"), so a reader does not take an answer on a sliver as meant."""
    extent = np.asarray(volume.array.shape[::-1]) * np.asarray(volume.spacing)  # x, y, z mm
    if float(extent.max()) >= minimum_mm:
        return None
    size = " x ".join(f"{float(e):.0f}" for e in extent)
    return (
        f"the series covers only {size} mm, far less than the weights were trained on "
        f"({trained_on}): the result may mean little"
    )
