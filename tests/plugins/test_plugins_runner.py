"""The runner: every way an analysis can go wrong is a recorded outcome, and the host goes on."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from workstation.core.results import LabelMap
from workstation.plugins import devices
from workstation.plugins.context import AnalysisInputs
from workstation.plugins.manager import load_registry
from workstation.plugins.run_store import RunStore
from workstation.plugins.runner import CancelToken, Runner


@pytest.fixture
def store(tmp_path):
    return tmp_path / "store"


@pytest.fixture
def runner(sample_plugin, store):
    with Runner(load_registry([sample_plugin]), store_dir=store, cancel_grace_s=0.5) as r:
        yield r


@pytest.fixture
def isolated_runner(sample_plugin, store):
    with Runner(
        load_registry([sample_plugin]), store_dir=store, isolated=True, cancel_grace_s=0.5
    ) as r:
        yield r


def recorded(store, run_id):
    with RunStore(store) as runs:
        return runs.get(run_id)


def test_in_process_run_returns_results_on_the_source_grid(runner, ct_volume, store) -> None:
    seen: list[tuple[float, str]] = []
    logs: list[str] = []
    outcome = runner.run(
        "sample.threshold",
        AnalysisInputs(volume=ct_volume, series=ct_volume.source),
        params={"lower": "50", "label": "lesion"},
        on_progress=lambda f, m: seen.append((f, m)),
        on_log=lambda level, m: logs.append(m),
    )
    assert outcome.ok, outcome.error
    labels, table = outcome.results
    assert isinstance(labels, LabelMap)
    assert labels.volume.geometry.is_close(ct_volume.geometry)
    np.testing.assert_array_equal(labels.volume.array, (ct_volume.array > 50).astype(np.uint8))
    assert labels.labels[0].name == "lesion"
    assert table.rows == [[int((ct_volume.array > 50).sum())]]
    assert seen == [(0.25, "thresholding"), (1.0, "done")]
    assert logs == ["lower=50.0"]
    record = recorded(store, outcome.run_id)
    assert record.outcome == "succeeded"
    assert record.analysis_version == "1.2.3"
    assert record.parameters == {"lower": 50.0, "label": "lesion"}
    assert record.inputs["series_uid"] == "2.25.99" and record.device == "cpu"
    assert record.duration_s is not None and record.duration_s >= 0


def test_exception_is_a_failed_run_with_message_and_traceback(runner, ct_volume, store) -> None:
    outcome = runner.run("sample.raises", AnalysisInputs(volume=ct_volume))
    assert outcome.outcome == "failed"
    assert outcome.error == "ValueError: the model could not read channel 3"
    assert "in raises" in outcome.traceback
    record = recorded(store, outcome.run_id)
    assert record.outcome == "failed" and record.error == outcome.error
    assert runner.run("sample.threshold", AnalysisInputs(volume=ct_volume)).ok  # host goes on


def test_bad_parameter_refused_before_running(runner, ct_volume, store) -> None:
    outcome = runner.run(
        "sample.threshold", AnalysisInputs(volume=ct_volume), params={"lower": "x"}
    )
    assert outcome.outcome == "refused"
    assert "parameter 'lower': 'x' is not a valid float" in outcome.error
    assert recorded(store, outcome.run_id).outcome == "refused"


def test_needs_gpu_refused_clearly_on_a_cpu_machine(runner, ct_volume, monkeypatch, store) -> None:
    monkeypatch.setattr(devices, "available_gpus", lambda: ())
    outcome = runner.run("sample.gpu", AnalysisInputs(volume=ct_volume))
    assert outcome.outcome == "refused"
    assert "needs a GPU" in outcome.error and "none is available" in outcome.error
    assert recorded(store, outcome.run_id).outcome == "refused"
    forced = runner.run("sample.gpu", AnalysisInputs(volume=ct_volume), device="cpu")
    assert "cannot run with --device cpu" in forced.error


def test_device_choice_prefers_cuda_then_mps(monkeypatch) -> None:
    monkeypatch.setattr(devices, "available_gpus", lambda: ("cuda", "mps"))
    assert devices.select_device("a.b", "prefers_gpu") == "cuda"
    assert devices.select_device("a.b", "prefers_gpu", "cpu") == "cpu"
    assert devices.select_device("a.b", "needs_gpu", "mps") == "mps"
    monkeypatch.setattr(devices, "available_gpus", lambda: ("mps",))
    assert devices.select_device("a.b", "prefers_gpu") == "mps"
    with pytest.raises(devices.DeviceUnavailable, match="no cuda device is available"):
        devices.select_device("a.b", "prefers_gpu", "cuda")
    monkeypatch.setattr(devices, "available_gpus", lambda: ())
    assert devices.select_device("a.b", "prefers_gpu") == "cpu"
    assert devices.select_device("a.b", "cpu") == "cpu"


def test_missing_image_input_refused(runner) -> None:
    outcome = runner.run("sample.threshold", AnalysisInputs())
    assert outcome.outcome == "refused"
    assert "needs an image series" in outcome.error


def test_records_input_loaded_only_through_the_accessor(runner) -> None:
    calls = []

    def records():
        calls.append(1)
        return ["obs1", "obs2"]

    outcome = runner.run("sample.records", AnalysisInputs(patient_id="P7", records=records))
    assert outcome.ok and outcome.results[0].text == "P7: 2 records" and calls == [1]
    assert runner.run("sample.records", AnalysisInputs()).outcome == "refused"


def test_undeclared_result_kind_fails(runner, ct_volume) -> None:
    outcome = runner.run("sample.wrong_kind", AnalysisInputs(volume=ct_volume))
    assert outcome.outcome == "failed"
    assert "returned a report, but declares only returns=['label_map']" in outcome.error


def test_result_off_the_source_grid_fails(runner, ct_volume) -> None:
    outcome = runner.run("sample.off_grid", AnalysisInputs(volume=ct_volume))
    assert outcome.outcome == "failed" and "not on the input's grid" in outcome.error


def test_cooperative_cancel_in_process(runner, ct_volume, store) -> None:
    token = CancelToken()
    started = threading.Event()
    box = {}
    thread = threading.Thread(
        target=lambda: box.setdefault(
            "o",
            runner.run(
                "sample.cooperative",
                AnalysisInputs(volume=ct_volume),
                cancel=token,
                on_progress=lambda f, m: started.set(),
            ),
        )
    )
    thread.start()
    assert started.wait(10)
    token.cancel()
    thread.join(10)
    assert box["o"].outcome == "cancelled"
    assert recorded(store, box["o"].run_id).outcome == "cancelled"


def test_seed_makes_runs_repeatable(runner, ct_volume) -> None:
    draws = [
        runner.run("sample.seeded", AnalysisInputs(volume=ct_volume), seed=s).results[0].rows
        for s in (7, 7, 8)
    ]
    assert draws[0] == draws[1]
    assert draws[0][0][0] != draws[2][0][0] and draws[0][0][1] != draws[2][0][1]


# --- isolated mode --------------------------------------------------------------------------
def test_isolated_run_streams_progress_and_keeps_worker_warm(isolated_runner, ct_volume) -> None:
    seen = []
    first = isolated_runner.run(
        "sample.threshold",
        AnalysisInputs(volume=ct_volume),
        params={"lower": 0},
        on_progress=lambda f, m: seen.append(m),
    )
    assert first.ok, first.error
    np.testing.assert_array_equal(
        first.results[0].volume.array, (ct_volume.array > 0).astype(np.uint8)
    )
    assert seen == ["thresholding", "done"]
    pids = {
        isolated_runner.run("sample.pid", AnalysisInputs(volume=ct_volume)).results[0].text
        for _ in range(2)
    }
    assert len(pids) == 1  # the same warm worker served both runs


def test_isolated_abort_fails_with_signal_and_worker_restarts(
    isolated_runner, ct_volume, store
) -> None:
    before = isolated_runner.run("sample.pid", AnalysisInputs(volume=ct_volume)).results[0].text
    outcome = isolated_runner.run("sample.aborts", AnalysisInputs(volume=ct_volume))
    assert outcome.outcome == "failed"
    assert outcome.error.startswith("worker died (signal 6")
    assert recorded(store, outcome.run_id).error.startswith("worker died (signal 6")
    after = isolated_runner.run("sample.pid", AnalysisInputs(volume=ct_volume))
    assert after.ok and after.results[0].text != before


def test_isolated_hang_times_out_and_worker_is_killed(isolated_runner, ct_volume, store) -> None:
    clock = time.monotonic()
    outcome = isolated_runner.run("sample.hangs", AnalysisInputs(volume=ct_volume))
    assert outcome.outcome == "timed out"
    assert outcome.error == "timed out after 1 s"
    assert time.monotonic() - clock < 30
    assert recorded(store, outcome.run_id).outcome == "timed out"
    override = isolated_runner.run("sample.stubborn", AnalysisInputs(volume=ct_volume), timeout=0.5)
    assert override.error == "timed out after 0.5 s"
    assert isolated_runner.run("sample.threshold", AnalysisInputs(volume=ct_volume)).ok


def test_isolated_exception_keeps_the_worker(isolated_runner, ct_volume) -> None:
    before = isolated_runner.run("sample.pid", AnalysisInputs(volume=ct_volume)).results[0].text
    outcome = isolated_runner.run("sample.raises", AnalysisInputs(volume=ct_volume))
    assert outcome.error == "ValueError: the model could not read channel 3"
    assert "Traceback" in outcome.traceback
    after = isolated_runner.run("sample.pid", AnalysisInputs(volume=ct_volume)).results[0].text
    assert after == before


@pytest.mark.parametrize("analysis", ["sample.cooperative", "sample.stubborn"])
def test_isolated_cancel_cooperative_then_killed(
    isolated_runner, ct_volume, store, analysis
) -> None:
    token = CancelToken()
    started = threading.Event()
    box = {}

    def go():
        box["o"] = isolated_runner.run(
            analysis,
            AnalysisInputs(volume=ct_volume),
            cancel=token,
            on_progress=lambda f, m: started.set(),
        )

    thread = threading.Thread(target=go)  # the GUI calls from a QThread, never the main one
    thread.start()
    assert started.wait(30)
    token.cancel()
    thread.join(30)
    assert box["o"].outcome == "cancelled"
    if analysis == "sample.stubborn":
        assert "did not stop within 0.5 s" in box["o"].error
    assert recorded(store, box["o"].run_id).outcome == "cancelled"
    assert isolated_runner.run("sample.threshold", AnalysisInputs(volume=ct_volume)).ok


def test_in_process_time_limit_stops_a_cooperative_analysis(runner, ct_volume, store) -> None:
    outcome = runner.run("sample.cooperative", AnalysisInputs(volume=ct_volume), timeout=0.3)
    assert outcome.outcome == "timed out"
    assert outcome.error == "timed out after 0.3 s"
    assert recorded(store, outcome.run_id).outcome == "timed out"


def test_one_gpu_job_at_a_time(runner, ct_volume, monkeypatch) -> None:
    monkeypatch.setattr(devices, "available_gpus", lambda: ("cuda",))
    outcomes = []
    threads = [
        threading.Thread(
            target=lambda: outcomes.append(
                runner.run("sample.gpu_busy", AnalysisInputs(volume=ct_volume))
            )
        )
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    spans = sorted(o.results[0].rows[0] for o in outcomes)
    assert [device for _, _, device in spans] == ["cuda"] * 3
    for (_, end, _), (start, _, _) in itertools.pairwise(spans):
        assert start >= end  # each GPU job started after the previous one finished


GPU_PLUGIN = """
import sys
from workstation.plugins.api import AnalysisSpec, Report, hookimpl

WORKSTATION_PLUGIN_API = "1.0"


@hookimpl
def workstation_analyses():
    return [AnalysisSpec(id="probe.gpu", title="GPU", version="1", entry=__name__ + ":run",
                         device="prefers_gpu", inputs=["patient_records"], returns=["report"])]


def run(ctx):
    return Report(name="device", text=ctx.device)
"""

HOST = """
import json, sys
sys.path.insert(0, sys.argv[1])
import probe_gpu_plugin
from workstation.plugins.context import AnalysisInputs
from workstation.plugins.manager import load_registry
from workstation.plugins.runner import Runner

with Runner(load_registry([probe_gpu_plugin]), isolated=True) as runner:
    outcome = runner.run("probe.gpu", AnalysisInputs(patient_id="P1", records=list))
print(json.dumps([outcome.outcome, outcome.device, outcome.results[0].text,
                  "torch" in sys.modules]))
"""


@pytest.mark.slow
def test_isolated_device_choice_keeps_torch_out_of_the_host(tmp_path) -> None:
    """The worker imports torch to list GPUs; the host (the GUI) never does."""
    (tmp_path / "probe_gpu_plugin.py").write_text(GPU_PLUGIN)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", HOST, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    outcome, device, seen, host_has_torch = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome == "succeeded" and device == seen
    assert device in ("cpu", "cuda", "mps")
    assert host_has_torch is False


@pytest.mark.parametrize("isolated", [False, True], ids=["in-process", "isolated"])
def test_an_analysis_that_stops_with_its_own_error_when_cancelled_ends_cancelled(
    sample_plugin, store, ct_volume, isolated
) -> None:
    token = CancelToken()
    started = threading.Event()
    with Runner(load_registry([sample_plugin]), store_dir=store) as runner:
        box = {}
        thread = threading.Thread(
            target=lambda: box.setdefault(
                "o",
                runner.run(
                    "sample.own_cancel",
                    AnalysisInputs(volume=ct_volume),
                    isolated=isolated,
                    cancel=token,
                    on_progress=lambda f, m: started.set(),
                ),
            )
        )
        thread.start()
        assert started.wait(60)
        token.cancel()
        thread.join(30)
    assert box["o"].outcome == "cancelled", box["o"].error
    assert recorded(store, box["o"].run_id).outcome == "cancelled"
