"""Running the analysis: the patient's timeline -> risk curve + attributions."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import torch

from workstation.plugins.api import PatientRef, Report, RunContext, TimeSeries
from workstation_records_rnn.features import (
    ATTRIBUTION_GROUPS,
    BIN_DAYS,
    CONDITIONS,
    HORIZON_DAYS,
    OUTCOME_NAME,
    VARIABLES,
    history_from_timeline,
    to_sequence,
)
from workstation_records_rnn.model import load_checkpoint


def attributions(model: torch.nn.Module, inputs: torch.Tensor, steps: int) -> np.ndarray:
    """Integrated gradients of the last bin's risk logit w.r.t. every input, grouped per
    variable: [groups, time]. The baseline is all-zero input: population-mean values, nothing
    measured, no gap, no condition."""
    from captum.attr import IntegratedGradients

    def last_logit(x: torch.Tensor) -> torch.Tensor:
        return model(x)[:, -1]

    with torch.backends.cudnn.flags(enabled=False):  # cuDNN RNNs only backpropagate in training
        raw = IntegratedGradients(last_logit).attribute(
            inputs, baselines=torch.zeros_like(inputs), n_steps=steps
        )
    raw = raw[0].detach().cpu().numpy()  # [time, features]
    per_variable = [raw[:, 3 * i : 3 * i + 3].sum(axis=1) for i in range(len(VARIABLES))]
    per_condition = [raw[:, 3 * len(VARIABLES) + j] for j in range(len(CONDITIONS))]
    return np.stack(per_variable + per_condition)


def run(ctx: RunContext) -> list:
    timeline = ctx.records()
    history = history_from_timeline(timeline)
    bin_ends, x = to_sequence(history)
    ctx.check_cancelled()
    if ctx.weights is None:
        raise ValueError(f"{ctx.analysis_id} needs weights (a checkpoint written by its trainer)")
    model, meta = load_checkpoint(ctx.weights, ctx.torch_device)
    inputs = torch.from_numpy(x)[None].to(ctx.torch_device)
    with torch.no_grad():
        risk = torch.sigmoid(model(inputs))[0].cpu().numpy()
    ctx.progress(0.5, "attributions")
    ctx.check_cancelled()
    grouped = attributions(model, inputs, int(ctx.params.get("ig_steps", 32)))
    times = [datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z") for t in bin_ends]
    demo = bool(meta.get("demo"))
    label = " (DEMO WEIGHTS trained on synthetic records; not for clinical use)" if demo else ""
    curve = TimeSeries(
        name="renal_risk",
        description=f"Probability of {OUTCOME_NAME} within {HORIZON_DAYS} days, "
        f"per {BIN_DAYS}-day bin{label}",
        patient=PatientRef(ctx.patient_id or timeline.patient_id),
        times=times,
        values=[float(v) for v in risk],
        units="probability",
        attributions={name: grouped[i].tolist() for i, name in enumerate(ATTRIBUTION_GROUPS)},
    )
    validation = meta.get("validation", {})
    top = sorted(ATTRIBUTION_GROUPS, key=lambda n: -abs(grouped[ATTRIBUTION_GROUPS.index(n)].sum()))
    text = "\n".join(
        [
            f"# {OUTCOME_NAME.capitalize()} risk{label}",
            "",
            f"- Latest risk ({times[-1][:10]}): **{risk[-1]:.2f}** within {HORIZON_DAYS} days.",
            f"- Highest risk: {risk.max():.2f} ({times[int(risk.argmax())][:10]}).",
            f"- Largest contributions to the latest risk: {', '.join(top[:3])}.",
            f"- Weights: {'demo, ' if demo else ''}{meta.get('trained_on', 'user checkpoint')}; "
            f"validation ROC AUC {validation.get('roc_auc', float('nan')):.3f}.",
        ]
    )
    return [curve, Report(name="renal_risk_report", description="Risk summary", text=text)]
