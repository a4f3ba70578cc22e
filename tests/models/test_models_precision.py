"""Precision and device helpers: what runs in which dtype and memory layout."""

from __future__ import annotations

import pytest
import torch

from workstation.models import (
    autocast_context,
    prefers_channels_last,
    prepare_network,
    resolve_precision,
    suited_num_workers,
    to_channels_last,
)


def test_resolve_precision_per_device():
    assert resolve_precision("cpu", "auto") == "fp32"
    assert resolve_precision("cpu", "fp16") == "fp32"
    assert resolve_precision("cpu", "bf16") == "bf16"
    assert resolve_precision("cuda", "fp16") == "fp16"
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("cpu", "int8")


def test_autocast_runs_linear_layers_in_the_chosen_dtype():
    layer = torch.nn.Linear(4, 4)
    x = torch.randn(2, 4)
    with autocast_context("cpu", "fp32"):
        assert layer(x).dtype == torch.float32
    with autocast_context("cpu", "bf16"):
        assert layer(x).dtype == torch.bfloat16


def test_channels_last_only_where_it_helps():
    assert not prefers_channels_last("cpu", "bf16")
    assert prefers_channels_last("cuda", "fp16")
    assert not prefers_channels_last("cuda", "fp32")
    volume = to_channels_last(torch.zeros(1, 2, 3, 4, 5))
    assert volume.is_contiguous(memory_format=torch.channels_last_3d)


def test_prepare_network_sets_eval_on_device():
    network = torch.nn.Sequential(torch.nn.Conv3d(1, 1, 1), torch.nn.Dropout(0.5)).train()
    prepared = prepare_network(network, "cpu", "auto")
    assert not prepared.training
    assert next(prepared.parameters()).device.type == "cpu"


def test_suited_num_workers_never_exceeds_the_request(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert suited_num_workers(4) == 0
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert suited_num_workers(4) == 2
    assert suited_num_workers(1) == 1
    assert suited_num_workers() == 2
