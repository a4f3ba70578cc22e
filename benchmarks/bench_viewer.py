"""Viewer speed and memory, each against a bare pyqtgraph / Qt peer in the same run.

1. Slice change redraw, 512 x 512 int16 with a label overlay: `SliceView.set_slice` + a
   synchronous repaint, against a bare `pg.ImageItem.setImage` + repaint (no overlay); the two
   take turns frame by frame, so load from other programs falls on both alike.
2. Window/level change rate: `ViewerModel.set_window` + repaint against `ImageItem.setLevels`.
3. Longest UI stall (10 ms probe timer) while a CPU-heavy analysis runs through the jobs panel
   (isolated worker, progress reported thousands of times a second), against the same probe idle.
4. Main window shown on a warm machine (fresh process: imports, window, first paint), against a
   bare QMainWindow in a fresh process; also checks that torch and monai were not imported.
5. Memory to open an N-slice 512 x 512 int16 series in the MPR viewer, against the volume's bytes.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_viewer.py [--slices 400]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402


def ct_volume(slices: int, size: int = 512):
    from workstation.core.volume import Volume

    rng = np.random.default_rng(0)
    array = rng.integers(-1000, 1500, size=(slices, size, size), dtype=np.int16)
    return Volume(array, spacing=(0.7, 0.7, 1.0), metadata={"modality": "CT"})


def timed_pair(ours, peer, frames: int) -> tuple[float, float, float, float]:
    """Median seconds per frame of two (step, repaint) pairs, frame by frame in turn: on a
    shared, noisy machine both then see the same load, so their ratio holds still.

    Returns wall-clock medians (ours, peer), then the medians of the UI thread's own CPU time
    (ours, peer): the work a frame costs, without the waits for other programs' turns."""
    wall: tuple[list[float], list[float]] = ([], [])
    cpu: tuple[list[float], list[float]] = ([], [])
    for n in range(frames):
        for (step, repaint), spent, worked in zip((ours, peer), wall, cpu):
            start, start_cpu = time.perf_counter(), time.thread_time()
            step(n)
            repaint()
            spent.append(time.perf_counter() - start)
            worked.append(time.thread_time() - start_cpu)
    medians = [statistics.median(t) for t in (*wall, *cpu)]
    return medians[0], medians[1], medians[2], medians[3]


def bench_redraw(app, frames: int) -> dict[str, float]:
    import pyqtgraph as pg

    from workstation.core.results import Label, LabelMap
    from workstation.gui.mpr import Plane
    from workstation.gui.view_widget import SliceView
    from workstation.gui.viewer_model import ViewerModel
    from workstation.gui.window_level import Window

    volume = ct_volume(64)
    labels = np.zeros(volume.shape, dtype=np.uint8)
    labels[:, 200:300, 150:350] = 1
    labels[:, 320:380, 100:200] = 2
    model = ViewerModel(volume)
    model.add_result(
        LabelMap(
            name="organs",
            volume=volume.with_array(labels),
            labels=[Label(1, "liver", (200, 80, 60)), Label(2, "kidney", (60, 200, 80))],
        )
    )
    view = SliceView(model, Plane.AXIAL)
    view.resize(600, 600)
    view.show()
    app.processEvents()

    bare = pg.GraphicsView()
    box = pg.ViewBox(lockAspect=True, invertY=True)
    bare.setCentralItem(box)
    item = pg.ImageItem(axisOrder="row-major")
    box.addItem(item)
    item.setImage(volume.array[0], levels=(-160, 240))
    bare.resize(600, 600)
    bare.show()
    app.processEvents()

    ours, peer, ours_cpu, peer_cpu = timed_pair(
        (lambda n: view.set_slice(n % 64), view.viewport().repaint),
        (
            lambda n: item.setImage(volume.array[n % 64], autoLevels=False, levels=(-160, 240)),
            bare.viewport().repaint,
        ),
        frames,
    )
    windows = [Window(40 + n % 50, 400 + n % 70) for n in range(frames)]
    ours_wl, peer_wl, ours_wl_cpu, peer_wl_cpu = timed_pair(
        (lambda n: model.set_window(windows[n]), view.viewport().repaint),
        (lambda n: item.setLevels((windows[n].low, windows[n].high)), bare.viewport().repaint),
        frames,
    )
    view.close()
    bare.close()
    return {
        "slice_ours": ours,
        "slice_bare": peer,
        "wl_ours": ours_wl,
        "wl_bare": peer_wl,
        "slice_ours_cpu": ours_cpu,
        "slice_bare_cpu": peer_cpu,
        "wl_ours_cpu": ours_wl_cpu,
        "wl_bare_cpu": peer_wl_cpu,
    }


PLUGIN = """
import time
import numpy as np
from workstation.plugins.api import AnalysisSpec, Label, LabelMap, hookimpl

WORKSTATION_PLUGIN_API = "1.0"


@hookimpl
def workstation_analyses():
    return [AnalysisSpec(id="bench.busy", title="Busy", version="1.0",
                         entry=f"{__name__}:busy", returns=["label_map"])]


def busy(ctx):
    deadline = time.monotonic() + 3.0
    x = np.random.default_rng(0).random((256, 256))
    n = 0
    while time.monotonic() < deadline:
        x = np.sqrt(x * x + 1e-3)
        n += 1
        ctx.progress(min(0.99, n / 20000), "working")
    mask = (ctx.volume.array > 0).astype(np.uint8)
    return LabelMap(name="mask", volume=ctx.volume.with_array(mask), labels=[Label(1, "fg")])
"""


def longest_gap(app, seconds_or_signal) -> float:
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer

    clock = QElapsedTimer()
    clock.start()
    last, worst = [0], [0]

    def tick():
        now = clock.elapsed()
        worst[0] = max(worst[0], now - last[0])
        last[0] = now

    probe = QTimer()
    probe.setInterval(10)
    probe.timeout.connect(tick)
    loop = QEventLoop()
    if isinstance(seconds_or_signal, float):
        QTimer.singleShot(int(seconds_or_signal * 1000), loop.quit)
        probe.start()
    else:
        start, signal = seconds_or_signal
        signal.connect(lambda _o: loop.quit())
        probe.start()
        start()
    loop.exec()
    probe.stop()
    return float(worst[0])


def bench_stall(app) -> dict[str, float]:
    import importlib

    from PySide6.QtCore import QSettings

    from workstation.gui.analyses import ensure_jobs_panel, start
    from workstation.gui.main_window import MainWindow
    from workstation.plugins.manager import load_registry

    folder = Path(tempfile.mkdtemp(prefix="bench-viewer-"))
    (folder / "ws_bench_busy.py").write_text(textwrap.dedent(PLUGIN))
    sys.path.insert(0, str(folder))
    registry = load_registry([importlib.import_module("ws_bench_busy")])
    settings = QSettings(str(folder / "s.ini"), QSettings.Format.IniFormat)
    window = MainWindow(folder / "store", settings=settings, with_browser=False)
    window.show_volume(ct_volume(64, 256), {"modality": "CT"})
    window.show()
    panel = ensure_jobs_panel(window, registry)
    panel.runner.warm_up()
    app.processEvents()
    idle = longest_gap(app, 3.0)
    busy = longest_gap(
        app, (lambda: start(window, "bench.busy", {}, "cpu", registry), panel.finished)
    )
    panel.shutdown()
    window.close()
    return {"stall_idle_ms": idle, "stall_busy_ms": busy}


SHOW_OURS = """
import os, sys, time
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
t0 = time.perf_counter()
from workstation.gui.app import application
from workstation.gui.main_window import MainWindow
app = application()
w = MainWindow(sys.argv[1])
w.show(); app.processEvents(); w.repaint()
print(time.perf_counter() - t0, int("torch" in sys.modules), int("monai" in sys.modules))
"""

SHOW_BARE = """
import os, sys, time
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
t0 = time.perf_counter()
from PySide6.QtWidgets import QApplication, QMainWindow
import pyqtgraph
app = QApplication([])
w = QMainWindow(); w.resize(1400, 850)
w.show(); app.processEvents(); w.repaint()
print(time.perf_counter() - t0, 0, 0)
"""


def bench_startup(repeat: int) -> dict[str, float]:
    store = tempfile.mkdtemp(prefix="bench-viewer-store-")
    env = {**os.environ, "PYTHONPATH": str(HERE.parent), "WORKSTATION_HOME": store}

    def run(code: str) -> tuple[float, bool]:
        out = subprocess.run(
            [sys.executable, "-c", code, store], capture_output=True, text=True, env=env, check=True
        ).stdout.split()
        return float(out[0]), out[1] == "1" or out[2] == "1"

    run(SHOW_OURS)  # warm the page cache
    ours = [run(SHOW_OURS) for _ in range(repeat)]
    bare = [run(SHOW_BARE) for _ in range(repeat)]
    return {
        "show_ours": statistics.median(t for t, _ in ours),
        "show_bare": statistics.median(t for t, _ in bare),
        "torch_or_monai_imported": float(any(flag for _, flag in ours)),
    }


MEMORY = """
import os, sys
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
import numpy as np
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) * 1024
from workstation.gui.app import application
from workstation.gui.main_window import MainWindow
from workstation.core.volume import Volume
app = application()
w = MainWindow(sys.argv[2], with_browser=False); w.show(); app.processEvents()
slices = int(sys.argv[1])
before = rss()
array = np.random.default_rng(0).integers(-1000, 1500, size=(slices, 512, 512), dtype=np.int16)
volume = Volume(array, spacing=(0.7, 0.7, 1.0), metadata={"modality": "CT"})
loaded = rss()
w.show_volume(volume, {"modality": "CT"}); app.processEvents(); w.repaint()
shown = rss()
print(array.nbytes, loaded - before, shown - before)
"""


def bench_memory(slices: int) -> dict[str, float]:
    store = tempfile.mkdtemp(prefix="bench-viewer-store-")
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    out = subprocess.run(
        [sys.executable, "-c", MEMORY, str(slices), store],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.split()
    nbytes, loaded, shown = (int(v) for v in out)
    return {"volume_bytes": nbytes, "rss_loaded": loaded, "rss_shown": shown}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--slices", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from workstation.gui.app import application

    app = application()
    redraw = bench_redraw(app, args.frames)
    stall = bench_stall(app)
    startup = bench_startup(args.repeat)
    memory = bench_memory(args.slices)

    ms, mb = 1000.0, 1024 * 1024
    so, sb = redraw["slice_ours"], redraw["slice_bare"]
    wo, wb = redraw["wl_ours"], redraw["wl_bare"]
    busy, idle = stall["stall_busy_ms"], stall["stall_idle_ms"]
    show_o, show_b = startup["show_ours"], startup["show_bare"]
    imported = "IMPORTED" if startup["torch_or_monai_imported"] else "not imported"
    shown, nbytes = memory["rss_shown"], memory["volume_bytes"]
    rows = [
        (
            "slice change + repaint, 512x512 int16 + labels",
            f"{so * ms:.2f} ms ({1 / so:.0f} fps)",
            f"{sb * ms:.2f} ms ({1 / sb:.0f} fps)",
            f"{so / sb:.2f}x",
            ">= 60 fps, <= 1.5x",
        ),
        (
            "slice change, UI thread CPU time",
            f"{redraw['slice_ours_cpu'] * ms:.2f} ms",
            f"{redraw['slice_bare_cpu'] * ms:.2f} ms",
            f"{redraw['slice_ours_cpu'] / redraw['slice_bare_cpu']:.2f}x",
            "<= 1.5x",
        ),
        (
            "window/level change + repaint",
            f"{wo * ms:.2f} ms ({1 / wo:.0f}/s)",
            f"{wb * ms:.2f} ms ({1 / wb:.0f}/s)",
            f"{wo / wb:.2f}x",
            ">= 60/s",
        ),
        (
            "window/level change, UI thread CPU time",
            f"{redraw['wl_ours_cpu'] * ms:.2f} ms",
            f"{redraw['wl_bare_cpu'] * ms:.2f} ms",
            f"{redraw['wl_ours_cpu'] / redraw['wl_bare_cpu']:.2f}x",
            "",
        ),
        (
            "longest UI stall, CPU-heavy analysis running",
            f"{busy:.0f} ms",
            f"{idle:.0f} ms (idle)",
            f"{busy / max(idle, 1):.2f}x",
            "< 100 ms",
        ),
        (
            "main window shown (fresh process)",
            f"{show_o:.2f} s",
            f"{show_b:.2f} s (bare QMainWindow)",
            f"{show_o / show_b:.2f}x",
            f"< 2 s; torch/monai {imported}",
        ),
        (
            f"memory, {args.slices} x 512 x 512 int16 shown in MPR",
            f"{shown / mb:.0f} MB",
            f"{nbytes / mb:.0f} MB (volume bytes)",
            f"{shown / nbytes:.2f}x",
            "<= 1.5x",
        ),
    ]
    print("| what | ours | bare peer | ratio (ours / peer) | goal |")
    print("| --- | ---: | ---: | ---: | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
