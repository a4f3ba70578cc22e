"""Tiny plugins written to disk, so the isolated worker can import them by name like real ones."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from workstation.core.refs import SeriesRef
from workstation.core.volume import Volume

SAMPLE_PLUGIN = """
import os
import time

import numpy as np

from workstation.plugins.api import (
    AnalysisSpec, Cancelled, HeatMap, InputKind, Label, LabelMap, Measurements, Parameter, Report,
    Volume, hookimpl,
)

WORKSTATION_PLUGIN_API = "1.0"
M = __name__


def _spec(id, entry, **kw):
    kw.setdefault("returns", ["label_map"])
    return AnalysisSpec(id=id, title=id, version="1.2.3", entry=f"{M}:{entry}",
                        description="test analysis", **kw)


@hookimpl
def workstation_analyses():
    return [
        _spec("sample.threshold", "threshold", returns=["label_map", "measurements"], parameters=[
            Parameter("lower", "float", default=0.0, min=-1024, max=3000, help="lowest value"),
            Parameter("label", "choice", default="fg", choices=["fg", "lesion"], help="name"),
        ]),
        _spec("sample.raises", "raises"),
        _spec("sample.hangs", "hangs", timeout=1.0),
        _spec("sample.aborts", "aborts"),
        _spec("sample.cooperative", "cooperative"),
        _spec("sample.stubborn", "stubborn"),
        _spec("sample.gpu", "threshold", device="needs_gpu"),
        _spec("sample.wrong_kind", "wrong_kind"),
        _spec("sample.off_grid", "off_grid"),
        _spec("sample.pid", "pid", returns=["report"]),
        _spec("sample.records", "records", inputs=[InputKind.PATIENT_RECORDS], returns=["report"]),
        _spec("sample.seeded", "seeded", returns=["measurements"]),
        _spec("sample.gpu_busy", "busy", device="prefers_gpu", returns=["measurements"]),
        _spec("sample.heat", "heat", returns=["heat_map"], parameters=[
            Parameter("colormap", "str", default="hot", help="colour map name"),
            Parameter("units", "str", default="%", help="units of the values"),
            Parameter("about", "str", default="values above the minimum", help="description"),
        ]),
        _spec("sample.unnamed", "unnamed"),
        _spec("sample.weights", "weights", returns=["report"]),
        _spec("sample.chatty", "chatty", returns=["report"]),
        _spec("sample.own_cancel", "own_cancel"),
    ]


def threshold(ctx):
    ctx.progress(0.25, "thresholding")
    ctx.logger.info("lower=%s", ctx.params["lower"])
    mask = (ctx.volume.array > ctx.params["lower"]).astype(np.uint8)
    ctx.progress(1.0, "done")
    labels = LabelMap(name="mask", volume=ctx.volume.with_array(mask),
                      labels=[Label(1, ctx.params["label"])])
    table = Measurements(name="count", columns=["voxels"], rows=[[int(mask.sum())]])
    return [labels, table]


def raises(ctx):
    raise ValueError("the model could not read channel 3")


def hangs(ctx):
    time.sleep(60)


def aborts(ctx):
    os.abort()


def cooperative(ctx):
    ctx.progress(0.0, "started")
    while True:
        ctx.check_cancelled()
        time.sleep(0.01)


def stubborn(ctx):
    ctx.progress(0.0, "started")
    time.sleep(60)


def wrong_kind(ctx):
    return Report(name="r", text="not a label map")


def off_grid(ctx):
    shifted = Volume(np.zeros(ctx.volume.array.shape, np.uint8), spacing=ctx.volume.spacing,
                     origin=(0.0, 0.0, 0.0))
    return LabelMap(name="m", volume=shifted)


def pid(ctx):
    return Report(name="pid", text=str(os.getpid()))


def records(ctx):
    return Report(name="r", text=f"{ctx.patient_id}: {len(ctx.records())} records")


def busy(ctx):
    start = time.monotonic()
    time.sleep(0.2)
    return Measurements(name="span", columns=["start", "end", "device"],
                        rows=[[start, time.monotonic(), ctx.device]])


def heat(ctx):
    values = (ctx.volume.array - ctx.volume.array.min()).astype(np.float32)
    return HeatMap(name="heat", description=ctx.params["about"],
                   volume=ctx.volume.with_array(values), colormap=ctx.params["colormap"],
                   units=ctx.params["units"])


def unnamed(ctx):
    # values 1 and 2 in the array, but only 1 in `labels`
    array = np.zeros(ctx.volume.array.shape, np.uint8)
    array[0] = 1
    array[-1] = 2
    return LabelMap(name="parts", volume=ctx.volume.with_array(array),
                    labels=[Label(1, "first", (0, 200, 0))])


def own_cancel(ctx):
    # stops with a library's own error once cancelled, as a model's inference loop may
    ctx.progress(0.0, "started")
    while not ctx.cancelled():
        time.sleep(0.01)
    raise RuntimeError("inference stopped on request")


def weights(ctx):
    return Report(name="weights", text=str(ctx.weights))


def chatty(ctx):
    # progress as a model pass reports it: a message, then many updates without one that
    # restart at 0 %, then a last message below the highest fraction seen
    ctx.progress(0.4, "thresholded")
    for step in range(101):
        ctx.progress(step / 100, "")
    ctx.progress(0.9, "heat map done")
    ctx.progress(1.0)
    return Report(name="r", text="done")


def seeded(ctx):
    draws = [float(np.random.rand())]  # numpy: seeded by the host before the call
    ctx.seed_everything()  # torch: seeded once the analysis asks (the host does not import it)
    import torch

    draws.append(float(torch.rand(1)))
    return Measurements(name="draw", columns=["numpy", "torch"], rows=[draws])
"""


@pytest.fixture(scope="session")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder on sys.path (inherited by spawned workers) for the test plugin modules."""
    folder = tmp_path_factory.mktemp("plugin-modules")
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    yield folder
    sys.path.remove(str(folder))


@pytest.fixture
def write_module(plugin_dir: Path) -> Callable[[str], str]:
    """Write Python source as a uniquely named module on sys.path; returns its name."""

    def write(source: str, prefix: str = "ws_test_plugin") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        (plugin_dir / f"{name}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        return name

    return write


@pytest.fixture
def sample_plugin_source() -> str:
    return SAMPLE_PLUGIN


@pytest.fixture
def sample_plugin(write_module: Callable[[str], str]):
    return importlib.import_module(write_module(SAMPLE_PLUGIN))


@pytest.fixture
def ct_volume() -> Volume:
    rng = np.random.default_rng(1)
    array = rng.integers(-100, 200, size=(4, 8, 10)).astype(np.int16)
    return Volume(
        array,
        spacing=(0.7, 0.7, 2.0),
        origin=(10.0, -5.0, 30.0),
        source=SeriesRef(series_uid="2.25.99", study_uid="2.25.98", patient_id="P1"),
    )


@pytest.fixture
def fake_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Install a distribution on sys.path: a .dist-info folder with METADATA and entry points."""

    def make(
        name: str, version: str, modules: dict[str, str], entry_points: dict[str, str]
    ) -> Path:
        site = tmp_path / f"site-{name}"
        site.mkdir()
        for module, source in modules.items():
            (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
        (info / "entry_points.txt").write_text(f"[workstation.plugins]\n{lines}\n")
        monkeypatch.syspath_prepend(str(site))
        return site

    return make


class WorkstationProcess:
    """A `workstation` command in its own process group (so Ctrl-C can go to the whole group,
    as a terminal sends it), with plugins from `site` importable."""

    root = Path(__file__).resolve().parents[2]

    def __init__(self, site: Path) -> None:
        import os

        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(self.root), str(site)])}

    def start(self, store: Path, *args: str) -> subprocess.Popen:
        command = [sys.executable, "-m", "workstation.cli", "--store", str(store), *args]
        return subprocess.Popen(
            command, env=self.env, stderr=subprocess.PIPE, text=True, start_new_session=True
        )

    @staticmethod
    def wait_for(process: subprocess.Popen, text: str = "started") -> str:
        """Read stderr until `text` appears (the analysis reported progress)."""
        seen = ""
        while text not in seen:
            line = process.stderr.readline()
            assert line, f"the command ended before {text!r}: {seen}"
            seen += line
        return seen


@pytest.fixture
def workstation_process() -> type[WorkstationProcess]:
    """The `WorkstationProcess` class (test modules cannot import conftest)."""
    return WorkstationProcess
