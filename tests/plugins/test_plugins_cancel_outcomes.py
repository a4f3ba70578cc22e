"""What a run that is cancelled, or crashes around a cancel, ends as: a real crash keeps its
message and traceback, a user's cancel is never called a time-out, and a second Ctrl-C in one
run does not take the grace period away from the runs after it."""

from __future__ import annotations

import importlib
import threading
import time

import pytest

from workstation.core.results import Label
from workstation.plugins.context import AnalysisInputs
from workstation.plugins.manager import load_registry
from workstation.plugins.runner import CancelToken, Runner

PLUGIN = """
import time

import numpy as np

from workstation.plugins.api import AnalysisSpec, Cancelled, Label, LabelMap, hookimpl

WORKSTATION_PLUGIN_API = "1.0"
M = __name__
NAMED = [Label(1, "first")]


def _spec(id, entry, **kw):
    kw.setdefault("returns", ["label_map"])
    return AnalysisSpec(id=id, title=id, version="1.0", entry=f"{M}:{entry}", **kw)


@hookimpl
def workstation_analyses():
    return [
        _spec("fix.crash", "crash", timeout=300.0),
        _spec("fix.gives_up", "gives_up", timeout=300.0),
        _spec("fix.own_error", "own_error"),
        _spec("fix.slow_stop", "slow_stop"),
        _spec("fix.stubborn", "stubborn"),
        _spec("fix.shared_labels", "shared_labels"),
    ]


def crash(ctx):
    ctx.progress(0.5, "halfway")
    raise ValueError("channel 3 is missing")


def gives_up(ctx):
    ctx.progress(0.5, "halfway")
    raise Cancelled("the model stopped itself")


def own_error(ctx):
    ctx.progress(0.0, "started")
    while not ctx.cancelled():
        time.sleep(0.01)
    raise RuntimeError("inference stopped on request")


def slow_stop(ctx):
    ctx.progress(0.0, "started")
    while not ctx.cancelled():
        time.sleep(0.01)
    time.sleep(0.5)  # finishing the current batch
    raise Cancelled("stopped after the batch")


def stubborn(ctx):
    ctx.progress(0.0, "started")
    time.sleep(60)


def shared_labels(ctx):
    array = np.zeros(ctx.volume.array.shape, np.uint8)
    array[0] = 1
    array[-1] = 2
    return LabelMap(name="parts", volume=ctx.volume.with_array(array), labels=NAMED)
"""


@pytest.fixture
def plugin(write_module):
    return importlib.import_module(write_module(PLUGIN, "ws_cancel_outcomes"))


@pytest.fixture
def registry(plugin):
    return load_registry([plugin])


def cancel_while_reporting(token: CancelToken):
    """A progress callback that presses Cancel and is still busy when the analysis's next
    message (its error) is already waiting: the cancel never reaches the worker."""

    def on_progress(fraction: float, message: str) -> None:
        token.cancel()
        time.sleep(0.3)

    return on_progress


def test_a_crash_while_cancel_is_pressed_stays_a_failure_with_its_traceback(
    registry, ct_volume
) -> None:
    token = CancelToken()
    with Runner(registry, cancel_grace_s=5.0) as runner:
        outcome = runner.run(
            "fix.crash",
            AnalysisInputs(volume=ct_volume),
            isolated=True,
            cancel=token,
            on_progress=cancel_while_reporting(token),
        )
    assert outcome.outcome == "failed", outcome.error
    assert outcome.error == "ValueError: channel 3 is missing"
    assert "channel 3 is missing" in outcome.traceback and "crash" in outcome.traceback


def test_a_users_cancel_is_never_reported_as_timed_out(registry, ct_volume) -> None:
    token = CancelToken()
    with Runner(registry, cancel_grace_s=5.0) as runner:
        outcome = runner.run(
            "fix.gives_up",
            AnalysisInputs(volume=ct_volume),
            isolated=True,
            cancel=token,
            on_progress=cancel_while_reporting(token),
        )
    assert outcome.outcome == "cancelled", outcome.error
    assert "timed out" not in outcome.error


@pytest.mark.parametrize("isolated", [False, True], ids=["in-process", "isolated"])
def test_an_error_raised_once_cancelled_keeps_its_message_and_traceback(
    registry, ct_volume, isolated
) -> None:
    token = CancelToken()
    with Runner(registry, cancel_grace_s=5.0) as runner:
        outcome = runner.run(
            "fix.own_error",
            AnalysisInputs(volume=ct_volume),
            isolated=isolated,
            cancel=token,
            on_progress=lambda f, m: token.cancel(),
        )
    assert outcome.outcome == "cancelled", outcome.error
    assert "RuntimeError: inference stopped on request" in outcome.error
    assert "inference stopped on request" in (outcome.traceback or "")


def test_stop_now_ends_the_run_under_way_but_not_the_grace_of_later_runs(
    registry, ct_volume
) -> None:
    with Runner(registry, cancel_grace_s=30.0) as runner:
        token, started, box = CancelToken(), threading.Event(), {}
        thread = threading.Thread(
            target=lambda: box.setdefault(
                "o",
                runner.run(
                    "fix.stubborn",
                    AnalysisInputs(volume=ct_volume),
                    cancel=token,
                    on_progress=lambda f, m: started.set(),
                ),
            ),
            daemon=True,
        )
        thread.start()
        assert started.wait(30)
        token.cancel()
        runner.stop_now()  # a second Ctrl-C: do not wait the 30 s
        thread.join(10)
        assert box["o"].outcome == "cancelled" and "still running" in box["o"].error

        # the next run, cancelled, gets its full grace to finish its batch and stop itself
        later = CancelToken()
        outcome = runner.run(
            "fix.slow_stop",
            AnalysisInputs(volume=ct_volume),
            cancel=later,
            on_progress=lambda f, m: later.cancel(),
        )
    assert outcome.outcome == "cancelled"
    assert "still running" not in outcome.error, outcome.error


def test_label_names_added_by_the_host_do_not_change_the_plugins_own_list(
    plugin, registry, ct_volume
) -> None:
    with Runner(registry) as runner:
        for _ in range(2):
            outcome = runner.run("fix.shared_labels", AnalysisInputs(volume=ct_volume))
            (labels,) = outcome.results
            assert [(lab.value, lab.name) for lab in labels.labels] == [
                (1, "first"),
                (2, "Label 2"),
            ]
    assert [Label(1, "first")] == plugin.NAMED
