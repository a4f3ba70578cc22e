"""In-process runs share one long-lived analysis thread: what one run leaves behind never
reaches the next, and a run the host gave up on never blocks the next."""

from __future__ import annotations

import importlib
import threading

import pytest

from workstation.plugins.context import AnalysisInputs
from workstation.plugins.manager import load_registry
from workstation.plugins.runner import CancelToken, Runner

THREAD_PLUGIN = """
import threading
import time

import torch

from workstation.plugins.api import AnalysisSpec, Measurements, hookimpl

WORKSTATION_PLUGIN_API = "1.0"
M = __name__
RELEASE = threading.Event()
HERE = threading.local()  # what this thread has run so far


def _spec(id, entry):
    return AnalysisSpec(id=id, title=id, version="1.0", entry=f"{M}:{entry}",
                        description="test analysis", returns=["measurements"], inputs_optional=True)


@hookimpl
def workstation_analyses():
    return [_spec("thread.who", "who"), _spec("thread.no_grad", "no_grad"),
            _spec("thread.stuck", "stuck")]


def who(ctx):
    HERE.runs = getattr(HERE, "runs", 0) + 1
    me = threading.current_thread()
    return Measurements(name="thread", columns=["runs on this thread", "name", "grad"],
                        rows=[[HERE.runs, me.name, torch.is_grad_enabled()]])


def no_grad(ctx):
    torch.set_grad_enabled(False)  # and never set back, as a careless plugin might
    return who(ctx)


def stuck(ctx):
    ctx.progress(0.0, "started")
    RELEASE.wait(60)  # ignores cancel until the test lets it go
    return who(ctx)
"""


@pytest.fixture
def thread_plugin(write_module):
    return importlib.import_module(write_module(THREAD_PLUGIN))


@pytest.fixture
def runner(thread_plugin, tmp_path):
    with Runner(load_registry([thread_plugin]), store_dir=tmp_path, cancel_grace_s=0.2) as r:
        yield r


def thread_row(runner: Runner, analysis: str) -> list:
    outcome = runner.run(analysis, AnalysisInputs())
    assert outcome.ok, outcome.error
    return outcome.results[0].rows[0]


def test_runs_after_the_first_reuse_its_thread_named_for_the_analysis(
    runner, thread_plugin
) -> None:
    assert thread_row(runner, "thread.who")[:2] == [1, "analysis-thread.who"]
    assert thread_row(runner, "thread.who")[:2] == [2, "analysis-thread.who"]
    assert not hasattr(thread_plugin.HERE, "runs")  # never on the caller's thread


def test_grad_mode_switched_off_by_one_run_is_on_again_in_the_next(runner) -> None:
    assert thread_row(runner, "thread.no_grad") == [1, "analysis-thread.no_grad", False]
    assert thread_row(runner, "thread.who") == [2, "analysis-thread.who", True]


def test_a_run_left_running_after_cancel_does_not_hold_up_the_next(runner, thread_plugin):
    assert thread_row(runner, "thread.who")[0] == 1
    token = CancelToken()
    started = threading.Event()
    box = {}

    def go():
        box["outcome"] = runner.run(
            "thread.stuck", AnalysisInputs(), cancel=token, on_progress=lambda f, m: started.set()
        )

    caller = threading.Thread(target=go)
    caller.start()
    try:
        assert started.wait(30)
        token.cancel()
        caller.join(30)
        outcome = box["outcome"]
        assert outcome.outcome == "cancelled"
        assert "still running in this process" in outcome.error
        # the stuck run keeps its thread, still waiting; a new thread runs the next ones
        assert thread_row(runner, "thread.who")[:2] == [1, "analysis-thread.who"]
        assert thread_row(runner, "thread.who")[:2] == [2, "analysis-thread.who"]
    finally:
        thread_plugin.RELEASE.set()
