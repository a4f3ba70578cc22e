"""The demo weights on the workstation's own stock CT phantom (the demo data, and what plugin
authors test with), which is not in their training data: unenhanced kidneys darker than the liver
once made the lesion-free phantom read as "liver lesion"."""

from __future__ import annotations

import pytest
import torch
from workstation_monai_classification.inference import classify, load_classifier

from workstation.plugins.api import Volume
from workstation.testing.phantoms import ct_phantom


@pytest.fixture(scope="module")
def demo_model():
    torch.set_num_threads(1)
    return load_classifier(None, "cpu")


@pytest.mark.parametrize("seed", [0, 2])
def test_stock_phantom_without_lesions_reads_as_no_lesion(demo_model, seed):
    hu, labels = ct_phantom(seed=seed, lesions=0)
    assert (labels == 6).sum() == 0
    found = classify(Volume(hu, (0.9, 0.9, 2.5)), demo_model, explanation="none")
    assert found.probabilities[1] < 0.5, found.probabilities


def test_stock_phantom_with_lesions_reads_as_lesion(demo_model):
    hu, labels = ct_phantom(seed=2, lesions=3)
    assert (labels == 6).sum() > 0
    found = classify(Volume(hu, (0.9, 0.9, 2.5)), demo_model, explanation="none")
    assert found.probabilities[1] > 0.5, found.probabilities
