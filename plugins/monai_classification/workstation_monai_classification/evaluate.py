"""Figures of a classifier checkpoint on held-out synthetic series:
``python -m workstation_monai_classification.evaluate --weights FILE --seed 2026 --cases 40``.

Prints the series-level figures (ROC AUC, accuracy, recall, specificity, precision, F1) as JSON;
with ``--card MODEL_CARD.md`` it also writes them into the card's "Held-out test" section
(replacing an earlier one), which is how the shipped card got that section.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from workstation_monai_classification.inference import load_classifier
from workstation_monai_classification.phantoms import make_cases
from workstation_monai_classification.train import evaluate

SECTION = "## Held-out test"


def card_section(figures: dict, seed: int) -> str:
    keys = ("roc_auc", "accuracy", "recall", "specificity", "precision", "f1")
    row = " | ".join(f"{figures[key]:.3f}" for key in keys)
    return (
        f"{SECTION} (seed {seed}, {figures['cases']} series, {figures['positives']} with a "
        f"lesion, threshold {figures['threshold']:g})\n"
        "| ROC AUC | accuracy | recall | specificity | precision | F1 |\n"
        "|---|---|---|---|---|---|\n"
        f"| {row} |\n\n"
        f"Confusion: {figures['true_positives']} TP, {figures['false_positives']} FP, "
        f"{figures['true_negatives']} TN, {figures['false_negatives']} FN. Made with "
        f"`python -m workstation_monai_classification.evaluate --seed {seed} "
        f"--cases {figures['cases']}`.\n"
    )


def write_into_card(card: Path, section: str) -> None:
    text = card.read_text(encoding="utf-8")
    if SECTION in text:
        before, _, after = text.partition(SECTION)
        rest = after.split("\n## ", 1)
        text = before + section + ("\n## " + rest[1] if len(rest) > 1 else "")
    else:
        head, sep, tail = text.partition("\n## Training")
        text = head + "\n" + section + sep + tail if sep else text + "\n" + section
    card.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, default=None, help="checkpoint (default: demo)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--card", type=Path, default=None, help="model card to update")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model = load_classifier(args.weights, "cpu")
    figures = evaluate(model, make_cases(args.cases, args.seed))
    print(json.dumps(figures, indent=1))
    if args.card is not None:
        write_into_card(args.card, card_section(figures, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
