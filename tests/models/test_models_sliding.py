"""Sliding-window inference: same result as MONAI, out-of-memory fallback, progress, cancel."""

from __future__ import annotations

import math
import threading

import pytest
import torch
from monai.inferers import sliding_window_inference
from monai.networks.nets import UNet

from workstation.models import InferenceCancelled, ModelError, fallback_plan, sliding_window
from workstation.models.sliding import count_windows

ROI = (16, 16, 16)


@pytest.fixture(scope="module")
def network() -> torch.nn.Module:
    torch.manual_seed(0)
    return UNet(3, 1, 2, channels=(4, 8), strides=(2,), num_res_units=0).eval()


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(1, 1, 24, 28, 20)


def plain(network, image, sw_batch_size=4, overlap=0.25):
    with torch.no_grad():
        return sliding_window_inference(
            image, ROI, sw_batch_size, network, overlap=overlap, mode="gaussian"
        )


class RunsOutOfMemory(torch.nn.Module):
    """Stands in for a GPU: raises CUDA's out-of-memory error for batches above `limit`."""

    def __init__(self, network: torch.nn.Module, limit: int) -> None:
        super().__init__()
        self.network, self.limit, self.batches = network, limit, []

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        self.batches.append(window.shape[0])
        if window.shape[0] > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.network(window)


def test_matches_the_bare_monai_call(network, image):
    result = sliding_window(
        network, image, ROI, sw_batch_size=4, overlap=0.25, device="cpu", precision="fp32"
    )
    torch.testing.assert_close(result, plain(network, image), rtol=0, atol=0)


def test_the_output_is_an_ordinary_tensor_a_plugin_may_change_in_place(network, image):
    """Run under inference mode like the bare call, but handed back as an ordinary tensor: a
    plugin clamping or scaling it in place must not fail with "inplace update to inference
    tensor outside InferenceMode"."""
    out = sliding_window(network, image, (16, 16, 16), sw_batch_size=2)
    assert not out.is_inference() and not out.requires_grad
    before = out.clone()
    out.clamp_(min=0.0).mul_(2.0)
    assert torch.equal(out, before.clamp(min=0.0) * 2.0)
    assert not sliding_window(network, image[0], (16, 16, 16)).is_inference()


def test_out_of_memory_retries_with_smaller_batches_and_same_output(network, image):
    flaky = RunsOutOfMemory(network, limit=2)
    retries: list[str] = []
    result = sliding_window(
        flaky,
        image,
        ROI,
        sw_batch_size=8,
        overlap=0.5,
        device="cpu",
        precision="fp32",
        on_retry=retries.append,
    )
    assert len(retries) == 2
    assert "8 windows per batch" in retries[0] and "retrying with 4 per batch" in retries[0]
    assert "retrying with 2 per batch" in retries[1]
    windows = count_windows(image.shape[2:], ROI, 0.5)
    final_batches = flaky.batches[-math.ceil(windows / 2) :]
    assert max(final_batches) == 2 and sum(final_batches) == windows
    torch.testing.assert_close(result, plain(network, image, sw_batch_size=8, overlap=0.5))


def test_out_of_memory_at_batch_one_is_a_clear_error(network, image):
    with pytest.raises(ModelError, match="even with one window per batch"):
        sliding_window(
            RunsOutOfMemory(network, limit=0),
            image,
            ROI,
            sw_batch_size=2,
            device="cpu",
            precision="fp32",
        )


def test_fallback_plan_ends_with_cpu_stitching_on_a_gpu():
    assert fallback_plan(8, torch.device("cuda")) == [
        (8, "cuda"),
        (4, "cuda"),
        (2, "cuda"),
        (1, "cuda"),
        (1, "cpu"),
    ]
    assert fallback_plan(3, "cpu") == [(3, "cpu"), (1, "cpu")]


def test_progress_reaches_one_once_per_batch(network, image):
    fractions: list[float] = []
    sliding_window(
        network,
        image,
        ROI,
        sw_batch_size=3,
        overlap=0.25,
        device="cpu",
        precision="fp32",
        progress=fractions.append,
    )
    windows = count_windows(image.shape[2:], ROI, 0.25)
    assert len(fractions) == math.ceil(windows / 3)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_cancellation_stops_between_batches(network, image):
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 2

    counting = RunsOutOfMemory(network, limit=100)
    with pytest.raises(InferenceCancelled):
        sliding_window(counting, image, ROI, sw_batch_size=1, device="cpu", cancelled=cancelled)
    assert len(counting.batches) == 2

    event = threading.Event()
    event.set()
    with pytest.raises(InferenceCancelled):
        sliding_window(network, image, ROI, sw_batch_size=1, device="cpu", cancelled=event)


def test_unbatched_image_keeps_its_shape(network, image):
    result = sliding_window(network, image[0], ROI, sw_batch_size=4, device="cpu")
    assert result.shape == (2, 24, 28, 20)
    torch.testing.assert_close(result, plain(network, image)[0])


def test_cpu_bf16_is_close_to_fp32_and_stitched_in_fp32(network, image):
    result = sliding_window(network, image, ROI, sw_batch_size=4, device="cpu", precision="bf16")
    assert result.dtype == torch.float32
    reference = plain(network, image)
    assert (result - reference).abs().max().item() < 0.05 * reference.abs().max().item()


def test_roi_with_wrong_dimensions_is_explained(network, image):
    with pytest.raises(ValueError, match="roi_size"):
        sliding_window(network, image, (16, 16), device="cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_cpu_stitching_fallback_gives_the_same_output(network, image):
    gpu_network = network.to("cuda")
    reference = sliding_window(
        gpu_network, image, ROI, sw_batch_size=4, device="cuda", precision="fp32"
    ).cpu()

    class FailsUntilCpuStitching(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.attempts = 0

        def forward(self, window):
            if window.shape[0] > 1 or self.attempts < 1:
                if window.shape[0] == 1:
                    self.attempts += 1
                raise torch.OutOfMemoryError("CUDA out of memory")
            return gpu_network(window)

    retries: list[str] = []
    result = sliding_window(
        FailsUntilCpuStitching(),
        image,
        ROI,
        sw_batch_size=4,
        device="cuda",
        precision="fp32",
        on_retry=retries.append,
    )
    assert result.device.type == "cpu" and "stitched on cpu" in retries[-1]
    torch.testing.assert_close(result, reference)
    network.to("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_cuda_autocast_is_close_to_fp32(network, image, precision):
    gpu_network = network.to("cuda")
    reference = sliding_window(
        gpu_network, image, ROI, sw_batch_size=4, device="cuda", precision="fp32"
    )
    result = sliding_window(
        gpu_network, image, ROI, sw_batch_size=4, device="cuda", precision=precision
    )
    assert result.dtype == torch.float32
    assert (result - reference).abs().max().item() < 0.05 * reference.abs().max().item()
    network.to("cpu")


class FakeRunContext:
    """The attributes a plugin's run context offers: device, progress, cancelled."""

    def __init__(self, cancel_after: int) -> None:
        self.device = torch.device("cpu")
        self.reported: list[float] = []
        self.cancel_after = cancel_after

    def progress(self, fraction: float, message: str = "") -> None:
        self.reported.append(fraction)

    @property
    def cancelled(self) -> bool:
        return len(self.reported) >= self.cancel_after


def test_run_context_supplies_device_progress_and_cancellation(network, image):
    context = FakeRunContext(cancel_after=10_000)
    result = sliding_window(network, image, ROI, sw_batch_size=4, context=context)
    torch.testing.assert_close(result, plain(network, image))
    assert context.reported[-1] == 1.0

    stopping = FakeRunContext(cancel_after=2)
    with pytest.raises(InferenceCancelled):
        sliding_window(network, image, ROI, sw_batch_size=1, context=stopping)
    assert len(stopping.reported) == 2
    with pytest.raises(TypeError, match="plain bool"):
        sliding_window(network, image, ROI, cancelled=False)
