"""Inference through the workstation host vs the bare MONAI call, fp32 vs bf16 on the CPU, and
per-analysis time on a 512 x 512 x 200 CT.

1. Host overhead: `Runner.run("monai_segmentation.ct")` in-process (the shipped demo weights,
   kept in the host's model cache after the first run as they are in a real session; onto the
   network grid, sliding window, back onto the series' grid, label table) vs
   `monai.inferers.sliding_window_inference` with the same network, weights and network input,
   alternated round by round. The peer is the bare call on the main thread or on a long-lived
   thread, whichever was faster in the run (glibc's main-heap trimming has slowed the main
   thread on a busy machine); a fresh thread per call and the run with the model cache off are
   shown too. Every run is recorded in
   a temporary store's run history, as `workstation --store DIR run`. Goal: the host adds < 10%.
   The run's parts outside the network are timed too, and the host's label map is checked
   against the bare call's output taken back to the series' grid.
2. CPU precision: the bare call in fp32 vs under `torch.autocast("cpu", torch.bfloat16)`.
3. Each installed image analysis once on a synthetic 512 x 512 x 200 CT; for the segmentation
   also the host vs the bare call there, alternated for `--big-rounds` rounds.

    .venv/bin/python benchmarks/bench_inference.py [--repeat 3] [--skip-big] [--skip-precision]
        [--big-rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time

import numpy as np

from workstation.core.volume import Volume
from workstation.plugins.context import AnalysisInputs
from workstation.plugins.manager import load_registry
from workstation.plugins.run_store import RunStore
from workstation.plugins.runner import Runner

SEGMENTATION = "monai_segmentation.ct"
SEG_PARAMS = {"roi_size": 64, "overlap": 0.25, "sw_batch_size": 2, "precision": "fp32"}


def timed(function):
    clock = time.perf_counter()
    value = function()
    return time.perf_counter() - clock, value


def phantom_volume() -> Volume:
    from workstation_monai_segmentation.phantoms import centred_geometry, make_case

    geometry = centred_geometry((1.0, 1.0, 2.0), np.eye(3))
    return make_case(np.random.default_rng(3), geometry).image


def big_ct() -> Volume:
    """512 x 512 x 200 at 0.7 x 0.7 x 1.5 mm: an elliptic body, a denser organ, noise (HU)."""
    rng = np.random.default_rng(0)
    z, y, x = np.ogrid[:200, :512, :512]
    body = ((y - 256) / 200.0) ** 2 + ((x - 256) / 240.0) ** 2 <= 1.0
    organ = ((y - 230) / 70.0) ** 2 + ((x - 320) / 80.0) ** 2 + ((z - 100) / 60.0) ** 2 <= 1.0
    array = np.full((200, 512, 512), -1000.0, np.float32)
    array[np.broadcast_to(body, array.shape)] = 40.0
    array[organ] = 90.0
    array += rng.normal(0, 15, size=(200, 512, 1)).astype(np.float32)
    return Volume(array, spacing=(0.7, 0.7, 1.5), metadata={"modality": "CT", "synthetic": True})


def way_back(logits, data, transform, volume: Volume) -> dict[str, float]:
    """The plugin's way back to the series' grid (labels by nearest neighbour, probabilities
    blended only in network cells that mix labels) against resampling every probability map
    with MONAI's `Invertd` (the plugin's former way), timed once each, and how many voxels
    differ."""
    import numpy as np
    import torch
    from workstation_monai_segmentation.labels_back import labels_to_source_grid
    from workstation_monai_segmentation.preprocessing import metatensor_geometry, to_source_grid

    def invertd():
        maps = to_source_grid(torch.softmax(logits[0].float(), 0), data, transform)
        return maps.argmax(axis=0).astype(np.uint8)

    def labels_back():  # as the plugin does: softmax only where probabilities are blended
        scores = logits[0].float().numpy().transpose(0, 3, 2, 1)
        grid = metatensor_geometry(data["image"])
        return labels_to_source_grid(scores, grid, volume.geometry, logits=True)

    invertd_s, before = timed(invertd)
    labels_s, after = timed(labels_back)
    return {"invertd": invertd_s, "labels": labels_s, "changed": float((before != after).mean())}


def on_a_fresh_thread(function):
    """`function()` on a new thread: what every in-process run paid before the runner kept
    one analysis thread (PyTorch starts a CPU thread team per calling thread)."""
    box = {}
    thread = threading.Thread(target=lambda: box.update(out=function()))
    thread.start()
    thread.join()
    return box["out"]


class KeptThread:
    """One long-lived thread that runs calls in turn, like the runner's analysis thread."""

    def __init__(self) -> None:
        from workstation.plugins.analysis_thread import AnalysisThread

        self._thread = AnalysisThread()

    def call(self, function):
        box = {}
        self._thread.submit("bare", lambda: box.update(out=function()))
        self._thread.wait(None)
        return box["out"]


def median_timed(function, repeat: int) -> float:
    """Median wall time of `function()`, after one warm call."""
    function()
    return statistics.median(timed(function)[0] for _ in range(repeat))


def host_overhead(runner: Runner, volume: Volume, repeat: int) -> None:
    import torch
    from monai.inferers import sliding_window_inference
    from workstation_monai_segmentation.inference import (
        kept_segmentation_model,
        load_segmentation_model,
    )
    from workstation_monai_segmentation.labels_back import labels_to_source_grid
    from workstation_monai_segmentation.preprocessing import network_input, preprocess

    from workstation.models import ModelCache

    model = load_segmentation_model(None, "cpu", "fp32")
    image, grid = network_input(volume, model.config)  # what the host feeds the network
    data, transform = preprocess(volume, model.config)  # MONAI's transforms, for comparison
    monai_image = data["image"].as_tensor()[None].float()
    input_diff = float((image - monai_image).abs().max())
    roi = [SEG_PARAMS["roi_size"]] * 3

    def bare():
        with torch.inference_mode():
            return sliding_window_inference(
                image,
                roi,
                SEG_PARAMS["sw_batch_size"],
                model.network,
                overlap=SEG_PARAMS["overlap"],
                mode="gaussian",
            )

    def bare_on_fresh_thread():
        return on_a_fresh_thread(bare)

    kept_thread = KeptThread()

    def bare_on_kept_thread():
        return kept_thread.call(bare)

    def host():
        outcome = runner.run(
            SEGMENTATION, AnalysisInputs(volume=volume), params=SEG_PARAMS, device="cpu"
        )
        assert outcome.ok, outcome.error
        return outcome

    import workstation.models.cache as cache_module

    kept = cache_module.model_cache()
    uncached = ModelCache(max_entries=0)

    def host_without_cache():
        cache_module._CACHE = uncached
        try:
            return host()
        finally:
            cache_module._CACHE = kept

    logits = bare()  # warm every path (first-call allocations, monai imports)
    bare_on_fresh_thread()
    bare_on_kept_thread()
    host_labels = host().results[0].volume.array
    host_without_cache()
    bare_labels = labels_to_source_grid(
        torch.softmax(logits[0].float(), 0).numpy().transpose(0, 3, 2, 1), grid, volume.geometry
    )
    main_s, thread_s, host_s, cold_s, fresh_s = [], [], [], [], []
    for _ in range(repeat):  # alternate so the shared machine's load hits all alike
        main_s.append(timed(bare)[0])
        host_s.append(timed(host)[0])
        thread_s.append(timed(bare_on_kept_thread)[0])
        cold_s.append(timed(host_without_cache)[0])
        fresh_s.append(timed(bare_on_fresh_thread)[0])
    # the peer: whichever way of calling the bare function was faster in this run
    on_main = statistics.median(main_s) <= statistics.median(thread_s)
    bare_s = main_s if on_main else thread_s
    peer_name = "on the main thread" if on_main else "on a long-lived thread"
    parts_repeat = max(3, repeat // 2)
    load_s = median_timed(lambda: load_segmentation_model(None, "cpu", "fp32"), parts_repeat)

    def kept_model():
        with kept_segmentation_model(None, "cpu", "fp32"):
            pass

    kept_s = median_timed(kept_model, parts_repeat)
    prep_s = median_timed(lambda: network_input(volume, model.config), parts_repeat)
    monai_prep_s = median_timed(lambda: preprocess(volume, model.config), parts_repeat)
    back = way_back(logits, data, transform, volume)
    b, h, c, fresh = (statistics.median(v) for v in (bare_s, host_s, cold_s, fresh_s))
    ratios = [hs / bs for hs, bs in zip(host_s, bare_s)]
    print(
        f"\n## host overhead: volume {volume.shape} (z, y, x) -> network grid "
        f"{tuple(image.shape[2:])}, {repeat} alternated rounds"
    )
    print("| what | s | ratio |\n| --- | ---: | ---: |")
    other, other_name = (
        (thread_s, "on a long-lived thread") if on_main else (main_s, "on the main thread")
    )
    print(f"| bare sliding_window_inference {peer_name} (the peer), median | {b:.3f} | 1.00x |")
    o = statistics.median(other)
    print(f"| (the same bare call {other_name}) | {o:.3f} | {o / b:.2f}x |")
    print(f"| (the same bare call on a fresh thread each time) | {fresh:.3f} | {fresh / b:.2f}x |")
    print(f"| workstation Runner.run, in-process, median | {h:.3f} | {h / b:.2f}x |")
    print(f"| - median of the per-round ratios | | {statistics.median(ratios):.2f}x |")
    print(f"| - fastest host / fastest bare | | {min(host_s) / min(bare_s):.2f}x |")
    print(f"| Runner.run with the model cache off, median | {c:.3f} | {c / b:.2f}x |")
    print(f"| part: weights load (cache off) | {load_s:.3f} | {load_s / b:.2f}x |")
    print(f"| part: model from the cache | {kept_s:.4f} | {kept_s / b:.3f}x |")
    print(f"| part: onto the network grid (separable) | {prep_s:.3f} | {prep_s / b:.2f}x |")
    monai_ratio = monai_prep_s / b
    print(f"| (MONAI Orientationd + Spacingd + window) | {monai_prep_s:.3f} | {monai_ratio:.2f}x |")
    back_s, invertd_s = back["labels"], back["invertd"]
    print(f"| part: labels back (softmax where blended) | {back_s:.3f} | {back_s / b:.2f}x |")
    print(f"| (former: Invertd on every class map) | {invertd_s:.3f} | {invertd_s / b:.2f}x |")
    print(f"network input vs MONAI's transforms: max difference {input_diff:.2g}")
    print(
        "host label map vs the bare call's logits taken back to the series' grid: "
        f"{100 * float((host_labels != bare_labels).mean()):.4f}% of voxels differ"
    )
    print(f"voxels whose label differs between the two ways back: {100 * back['changed']:.4f}%")
    print(f"host overhead: {100 * (h / b - 1):+.1f}% (median of medians)")
    malloc = os.environ.get("MALLOC_MMAP_THRESHOLD_", "glibc default (dynamic)")
    print(f"mmap threshold: {malloc}")
    print(f"rounds (s): bare (main) {[round(v, 3) for v in main_s]}")
    print(f"     bare (long-lived) {[round(v, 3) for v in thread_s]}")
    print(f"                  host {[round(v, 3) for v in host_s]}")
    print(f"             cache off {[round(v, 3) for v in cold_s]}")
    print(f"   bare (fresh thread) {[round(v, 3) for v in fresh_s]}")


def segmentation_parts(runner: Runner, volume: Volume, rounds: int) -> dict[str, float]:
    """The whole run against the bare MONAI call on the same network input, alternated for
    `rounds` rounds (the bare call on a long-lived thread, as the runner's analysis thread),
    then each step outside the network alone, once: onto the network grid (the plugin's and
    MONAI's transforms) and back onto the series' grid (the plugin's and `Invertd`)."""
    import torch
    from monai.inferers import sliding_window_inference
    from workstation_monai_segmentation.inference import load_segmentation_model
    from workstation_monai_segmentation.preprocessing import network_input, preprocess

    model = load_segmentation_model(None, "cpu", "fp32")
    image, _ = network_input(volume, model.config)
    roi = [SEG_PARAMS["roi_size"]] * 3

    def bare():
        with torch.inference_mode():
            return sliding_window_inference(
                image,
                roi,
                SEG_PARAMS["sw_batch_size"],
                model.network,
                overlap=SEG_PARAMS["overlap"],
                mode="gaussian",
            )

    def host():
        outcome = runner.run(
            SEGMENTATION, AnalysisInputs(volume=volume), params=SEG_PARAMS, device="cpu"
        )
        assert outcome.ok, outcome.error

    kept_thread = KeptThread()
    bare_s, host_s = [], []
    for _ in range(rounds):  # alternate so the shared machine's load hits both alike
        bare_s.append(timed(lambda: kept_thread.call(bare))[0])
        host_s.append(timed(host)[0])
    logits = kept_thread.call(bare)
    prep_s, _ = timed(lambda: network_input(volume, model.config))
    monai_prep_s, (data, transform) = timed(lambda: preprocess(volume, model.config))
    back = way_back(logits, data, transform, volume)
    return {
        "grid": tuple(image.shape[2:]),
        "bare": statistics.median(bare_s),
        "host": statistics.median(host_s),
        "ratios": [h / b for h, b in zip(host_s, bare_s, strict=True)],
        "prep": prep_s,
        "monai_prep": monai_prep_s,
        "back": back["labels"],
        "invertd": back["invertd"],
        "changed": back["changed"],
    }


def precision(volume: Volume, repeat: int) -> None:
    import torch
    from monai.inferers import sliding_window_inference
    from workstation_monai_segmentation.inference import load_segmentation_model
    from workstation_monai_segmentation.preprocessing import network_input

    model = load_segmentation_model(None, "cpu", "fp32")
    image = network_input(volume, model.config)[0]
    image = image[..., :64, :64, :64].contiguous()  # one window: bf16 may be very slow here

    def call(dtype):
        with (
            torch.inference_mode(),
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None),
        ):
            return sliding_window_inference(image, [64] * 3, 1, model.network)

    call(None)
    call(torch.bfloat16)
    fp32_runs, bf16_runs = [], []
    for _ in range(repeat):  # alternate so the shared machine's load hits both alike
        fp32_runs.append(timed(lambda: call(None)))
        bf16_runs.append(timed(lambda: call(torch.bfloat16)))
    fp32_s = statistics.median(t for t, _ in fp32_runs)
    bf16_s = statistics.median(t for t, _ in bf16_runs)
    fp32_out, bf16_out = fp32_runs[0][1], bf16_runs[0][1]
    agree = float((fp32_out.argmax(1) == bf16_out.float().argmax(1)).float().mean())
    print(
        f"\n## CPU precision, one 64^3 window, bare call, median of {repeat} (CPU: {cpu_flags()})"
    )
    print("| precision | s | ratio |\n| --- | ---: | ---: |")
    print(f"| fp32 (the peer) | {fp32_s:.3f} | 1.00x |")
    print(f"| bf16 autocast | {bf16_s:.3f} | {bf16_s / fp32_s:.2f}x |")
    print(f"voxels with the same arg-max label: {100 * agree:.2f}%")


def cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            flags = handle.read().split("flags", 2)[1].split("\n")[0]
    except (OSError, IndexError):
        return "unknown"
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
    return ", ".join(f for f in wanted if f" {f}" in flags) or "no AVX2"


def per_analysis(runner: Runner, registry, rounds: int) -> None:
    clock = time.perf_counter()
    volume = big_ct()
    print(
        f"\n## per analysis on a {volume.shape[::-1]} (x, y, z) CT, one run each "
        f"(made in {time.perf_counter() - clock:.1f} s)"
    )
    print("| analysis | s | outcome |\n| --- | ---: | --- |")
    jobs = [
        ("threshold.segment", {}),
        (SEGMENTATION, SEG_PARAMS),
        ("monai_reconstruction.restore", {}),
        ("monai_classification.liver_lesion", {}),
    ]
    known = {e.id for e in registry.entries if e.status == "ok"}
    for analysis_id, params in jobs:
        if analysis_id not in known:
            print(f"| {analysis_id} | - | not installed |")
            continue
        outcome = runner.run(
            analysis_id, AnalysisInputs(volume=volume), params=params, device="cpu"
        )
        state = "ok" if outcome.ok else f"{outcome.outcome}: {outcome.error}"
        print(f"| {analysis_id} | {outcome.duration_s:.1f} | {state} |", flush=True)
        if analysis_id == SEGMENTATION and outcome.ok:
            parts = segmentation_parts(runner, volume, rounds)
            bare, host = parts["bare"], parts["host"]
            ratios = ", ".join(f"{r:.2f}x" for r in parts["ratios"])
            print(
                f"| - bare sliding_window_inference, network grid {parts['grid']}, median of "
                f"{rounds} | {bare:.2f} | 1.00x |"
            )
            print(
                f"| - the same run through the host, median of {rounds}, alternated | "
                f"{host:.2f} | {host / bare:.2f}x (rounds: {ratios}) |"
            )
            print(f"| - onto the network grid (separable), alone | {parts['prep']:.2f} | |")
            print(f"| - (MONAI Orientationd + Spacingd + window) | {parts['monai_prep']:.2f} | |")
            print(f"| - labels back to 512 x 512 x 200, alone | {parts['back']:.2f} | |")
            print(
                f"| - (former way back: Invertd on every probability map) | "
                f"{parts['invertd']:.1f} | labels differ in {100 * parts['changed']:.4f}% |"
            )
            rest = host - bare - parts["prep"] - parts["back"]
            print(f"| - the rest (host, label table) | {rest:.2f} | |", flush=True)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument(
        "--big-rounds", type=int, default=3, help="host vs bare rounds on the 512 x 512 x 200 CT"
    )
    parser.add_argument(
        "--skip-precision", action="store_true", help="no fp32 vs bf16 (slow on most CPUs)"
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    registry = load_registry()
    with (
        tempfile.TemporaryDirectory(prefix="bench-inference-store-") as store,
        Runner(registry, store_dir=store, isolated=False) as runner,
    ):  # every run is recorded in the store's run history, as `workstation --store DIR run`
        volume = phantom_volume()
        host_overhead(runner, volume, args.repeat)
        with RunStore(store) as runs:
            recorded = runs.list(analysis_id=SEGMENTATION)
        print(f"runs recorded in the run history: {len(recorded)}, {recorded[0].outcome!r} last")
        if not args.skip_precision:
            precision(volume, args.repeat)
        if not args.skip_big:
            per_analysis(runner, registry, args.big_rounds)


if __name__ == "__main__":
    main()
