"""Pictures of non-image results for people reading a run folder without the workstation open:
a time series (risk curve) with its attributions on the same time axis, as a PNG."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np

from workstation.core.results import TimeSeries

MAX_ATTRIBUTION_ROWS = 12  # the variables with the largest total attribution; the CSV has all


def time_series_png(result: TimeSeries, path: Path, demo_weights: bool) -> None:
    """Curve on top, a heat strip of per-variable attributions below; demo results say so."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt

    times = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in result.times]
    variables = sorted(
        result.attributions, key=lambda v: -float(np.nansum(np.abs(result.attributions[v])))
    )[:MAX_ATTRIBUTION_ROWS]
    rows = 2 if variables else 1
    figure, axes = plt.subplots(
        rows,
        1,
        figsize=(9, 3.2 + 0.28 * len(variables)),
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": [3, max(1, len(variables) * 0.35)][:rows]},
    )
    curve = axes[0][0]
    curve.plot(times, result.values, marker="o", markersize=3, linewidth=1.5, color="#c0392b")
    curve.set_ylabel(result.units or "value")
    title = result.description or result.name
    if demo_weights:
        title += "  [DEMO WEIGHTS: not for clinical use]"
    curve.set_title(title, fontsize=10)
    curve.grid(alpha=0.3)
    if variables:
        strip = axes[1][0]
        values = np.array([result.attributions[v] for v in variables], dtype=float)
        limit = float(np.nanmax(np.abs(values))) or 1.0
        numbers = matplotlib.dates.date2num(times)
        edges = _edges(numbers)
        strip.pcolormesh(
            edges, np.arange(len(variables) + 1), values, cmap="coolwarm", vmin=-limit, vmax=limit
        )
        strip.set_yticks(np.arange(len(variables)) + 0.5, labels=variables, fontsize=7)
        strip.invert_yaxis()
        strip.set_xlabel("time")
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges half-way between time points, so each attribution sits on its own time."""
    if len(centres) == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    middle = (centres[1:] + centres[:-1]) / 2
    return np.concatenate([[2 * centres[0] - middle[0]], middle, [2 * centres[-1] - middle[-1]]])
