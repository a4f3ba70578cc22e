"""A patient's history -> a time-binned multivariate sequence with masks and time gaps.

Numpy only, and fed from either of two sources so that training and use see the same numbers:
the timeline the workstation hands an analysis (`history_from_timeline`) and plain FHIR R4
bundles (`history_from_bundle`, for training on synthetic records written by
`workstation records synth`).

Per bin of BIN_DAYS and per variable: the bin's mean (else the last value carried forward,
else the population mean), whether it was measured in the bin, and the years since it was last
measured; plus one flag per risk condition, set from its onset on. The outcome itself is never an
input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

# (name, LOINC code, unit, population mean, population sd) - fixed, so features never depend on
# the batch they are computed in.
VARIABLES: tuple[tuple[str, str, str, float, float], ...] = (
    ("creatinine", "2160-0", "mg/dL", 1.2, 0.5),
    ("systolic_bp", "8480-6", "mm[Hg]", 130.0, 15.0),
    ("diastolic_bp", "8462-4", "mm[Hg]", 82.0, 10.0),
    ("glucose", "2339-0", "mg/dL", 110.0, 30.0),
    ("hba1c", "4548-4", "%", 7.0, 1.0),
    ("bmi", "39156-5", "kg/m2", 28.0, 5.0),
)
CONDITIONS: tuple[tuple[str, str], ...] = (
    ("chronic_kidney_disease", "431855005"),
    ("hypertension", "59621000"),
    ("diabetes", "44054006"),
)
# Units other than the variable's that convert exactly: (code, unit) -> factor.
ALTERNATE_UNITS = {("2160-0", "umol/L"): 1 / 88.42}
OUTCOME_CODE = "14669001"  # SNOMED CT: acute renal failure syndrome
OUTCOME_NAME = "acute renal failure"
BIN_DAYS = 30
HORIZON_DAYS = 365
DAY = 86400.0
YEAR = 365.25 * DAY
FEATURE_NAMES = tuple(
    f"{name}:{part}" for name, *_ in VARIABLES for part in ("value", "measured", "gap")
) + tuple(name for name, _ in CONDITIONS)
ATTRIBUTION_GROUPS = tuple(name for name, *_ in VARIABLES) + tuple(n for n, _ in CONDITIONS)


@dataclass
class History:
    """Observations per LOINC code (times in seconds, values in the variable's unit) and the
    earliest onset of each condition code."""

    observations: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    conditions: dict[str, float] = field(default_factory=dict)

    def truncated(self, before: float) -> History:
        """Only what was known before `before` (training never sees the outcome's time)."""
        return History(
            {c: (t[t < before], v[t < before]) for c, (t, v) in self.observations.items()},
            {c: s for c, s in self.conditions.items() if s < before},
        )

    @property
    def first_time(self) -> float | None:
        times = [t.min() for t, _ in self.observations.values() if t.size]
        return min(times) if times else None

    @property
    def last_time(self) -> float | None:
        times = [t.max() for t, _ in self.observations.values() if t.size]
        return max(times) if times else None


def history_from_timeline(timeline: Any) -> History:
    """From the workstation's Timeline (``ctx.records()``): per-code arrays and condition spans."""
    history = History()
    for _, code, unit, *_ in VARIABLES:
        series = timeline.observations.get(code)
        if series is None:
            continue
        factor = 1.0 if series.unit == unit else ALTERNATE_UNITS.get((code, series.unit))
        if factor is None:
            continue
        times = np.asarray(series.times, dtype=np.float64)
        values = np.asarray(series.values, dtype=np.float64) * factor
        finite = np.isfinite(values)
        history.observations[code] = (times[finite], values[finite])
    for span in timeline.spans:
        if span.kind == "condition" and span.start is not None:
            previous = history.conditions.get(span.code, np.inf)
            history.conditions[span.code] = min(previous, float(span.start))
    return history


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def history_from_bundle(bundle: dict[str, Any]) -> History:
    """From one patient's FHIR R4 bundle (the shape `workstation records synth` writes)."""
    wanted = {code: unit for _, code, unit, *_ in VARIABLES}
    found: dict[str, list[tuple[float, float]]] = {}
    conditions: dict[str, float] = {}
    for entry in bundle.get("entry", []):
        resource = entry.get("resource", {})
        kind = resource.get("resourceType")
        if kind == "Condition" and resource.get("onsetDateTime"):
            code = resource["code"]["coding"][0]["code"]
            onset = _seconds(resource["onsetDateTime"])
            conditions[code] = min(conditions.get(code, np.inf), onset)
        if kind != "Observation" or "effectiveDateTime" not in resource:
            continue
        when = _seconds(resource["effectiveDateTime"])
        for item in [resource, *resource.get("component", [])]:
            quantity = item.get("valueQuantity")
            code = item.get("code", {}).get("coding", [{}])[0].get("code")
            if not quantity or code not in wanted:
                continue
            unit = quantity.get("code") or quantity.get("unit")
            factor = 1.0 if unit == wanted[code] else ALTERNATE_UNITS.get((code, unit))
            if factor is not None:
                found.setdefault(code, []).append((when, float(quantity["value"]) * factor))
    history = History(conditions=conditions)
    for code, pairs in found.items():
        pairs.sort()
        history.observations[code] = (
            np.array([p[0] for p in pairs]),
            np.array([p[1] for p in pairs]),
        )
    return history


def to_sequence(history: History, end: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(bin end times in seconds [T], features [T, F] float32) from the first observation to
    `end` (default the last observation)."""
    start = history.first_time
    if start is None:
        raise ValueError(
            "the patient has none of the model's variables: "
            + ", ".join(f"{name} ({code})" for name, code, *_ in VARIABLES)
        )
    stop = history.last_time if end is None else end
    width = BIN_DAYS * DAY
    count = int((stop - start) // width) + 1
    bin_ends = start + width * np.arange(1, count + 1)
    x = np.zeros((count, len(FEATURE_NAMES)), dtype=np.float32)
    for index, (_, code, _, mean, sd) in enumerate(VARIABLES):
        times, values = history.observations.get(code, (np.empty(0), np.empty(0)))
        keep = times <= stop
        times, values = times[keep], values[keep]
        bins = ((times - start) // width).astype(int)
        sums = np.bincount(bins, weights=values, minlength=count)[:count]
        counts = np.bincount(bins, minlength=count)[:count]
        last_value, last_time = mean, None
        for b in range(count):
            if counts[b]:
                last_value = sums[b] / counts[b]
                last_time = times[bins == b].max()
            x[b, 3 * index] = (last_value - mean) / sd
            x[b, 3 * index + 1] = float(counts[b] > 0)
            reference = start if last_time is None else last_time
            x[b, 3 * index + 2] = min((bin_ends[b] - reference) / YEAR, 5.0)
    for offset, (_, code) in enumerate(CONDITIONS):
        onset = history.conditions.get(code)
        if onset is not None:
            x[:, 3 * len(VARIABLES) + offset] = (bin_ends >= onset).astype(np.float32)
    return bin_ends, x


def training_example(history: History) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(features [T, F], label per bin [T], whether the bin counts [T]) for training.

    A bin's label is 1 when the outcome starts within HORIZON_DAYS after the bin's end; inputs
    stop before the outcome, so bins at or after it are not used."""
    onset = history.conditions.get(OUTCOME_CODE)
    known = history.truncated(onset) if onset is not None else history
    if known.first_time is None:
        return None
    bin_ends, x = to_sequence(known)
    if onset is None:
        labels = np.zeros(len(bin_ends), dtype=np.float32)
    else:
        labels = ((onset - bin_ends) <= HORIZON_DAYS * DAY).astype(np.float32)
    valid = (
        np.ones(len(bin_ends), dtype=bool) if onset is None else bin_ends < onset + BIN_DAYS * DAY
    )
    return x, labels, valid
