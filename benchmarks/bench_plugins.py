"""Plugin host speed: listing, runner overhead, isolated worker cost, each against a peer.

    python benchmarks/bench_plugins.py [--repeat N] [--size Z,Y,X]

- `workstation plugins --json` wall time vs. a bare `python -c pass` and `python -c "import
  numpy"` started the same way (goal: under 1 s warm).
- Runner overhead: the same analysis function called directly vs. through `Runner.run`
  in-process, with run records written to a store (goal: under 5 %).
- Isolated worker: first run (process start + imports) and warm runs vs. the direct call.

Prints a Markdown table; nothing here asserts, the figures go into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workstation.core.volume import Volume  # noqa: E402
from workstation.plugins.context import AnalysisInputs, RunContext  # noqa: E402
from workstation.plugins.manager import load_registry  # noqa: E402
from workstation.plugins.runner import Runner  # noqa: E402

PLUGIN = """
import numpy as np
from scipy import ndimage
from workstation.plugins.api import AnalysisSpec, Label, LabelMap, Parameter, hookimpl

WORKSTATION_PLUGIN_API = "1.0"


@hookimpl
def workstation_analyses():
    return [AnalysisSpec(id="bench.threshold", title="Threshold", version="1.0",
                         entry=__name__ + ":run", returns=["label_map"],
                         parameters=[Parameter("lower", "float", default=200.0, help="HU")])]


def run(ctx):
    mask = ctx.volume.array >= ctx.params["lower"]
    labels, count = ndimage.label(mask)
    return LabelMap(name="components", volume=ctx.volume.with_array(labels.astype(np.int32)),
                    labels=[Label(1, "component")])
"""


def timed(function, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def cli_times(code: str, repeat: int, env: dict[str, str]) -> float:
    def once() -> None:
        subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)

    once()  # warm the file cache
    return statistics.median(timed(once, repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--size", default="96,256,256", help="volume shape z,y,x")
    args = parser.parse_args()
    shape = tuple(int(v) for v in args.size.split(","))

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rows: list[tuple[str, str, str, str]] = []
    python_pass = cli_times("pass", args.repeat, env)
    python_numpy = cli_times("import numpy", args.repeat, env)
    listing = cli_times(
        "import sys; from workstation.cli import main; sys.exit(main(['plugins', '--json']))",
        args.repeat,
        env,
    )
    rows.append(
        (
            "`workstation plugins --json` (median wall)",
            f"{listing * 1000:.0f} ms",
            f"`python -c pass` {python_pass * 1000:.0f} ms; `import numpy` "
            f"{python_numpy * 1000:.0f} ms",
            f"{listing / python_numpy:.2f}x numpy start",
        )
    )

    with tempfile.TemporaryDirectory() as scratch:
        Path(scratch, "bench_threshold_plugin.py").write_text(textwrap.dedent(PLUGIN))
        sys.path.insert(0, scratch)
        module = importlib.import_module("bench_threshold_plugin")
        rng = np.random.default_rng(0)
        volume = Volume(rng.integers(-1000, 1500, size=shape).astype(np.int16))
        inputs = AnalysisInputs(volume=volume)
        registry = load_registry([module])

        def direct() -> None:
            ctx = RunContext("bench.threshold", {"lower": 200.0}, inputs, scratch_dir=Path(scratch))
            module.run(ctx)

        direct()
        store = Path(scratch) / "store"
        with Runner(registry, store_dir=store) as runner:
            runner.run("bench.threshold", inputs)  # creates the store's tables once

            def through_runner() -> None:
                outcome = runner.run("bench.threshold", inputs)
                assert outcome.ok, outcome.error

            # interleave so both see the same machine load
            direct_times, runner_times = [], []
            for _ in range(args.repeat):
                direct_times += timed(direct, 1)
                runner_times += timed(through_runner, 1)
        d, r = statistics.median(direct_times), statistics.median(runner_times)
        rows.append(
            (
                f"analysis on {shape} int16, in-process runner (median)",
                f"{r * 1000:.1f} ms",
                f"direct call {d * 1000:.1f} ms",
                f"+{(r - d) / d * 100:.1f} %",
            )
        )

        with Runner(registry, store_dir=store, isolated=True) as runner:
            start = time.perf_counter()
            first = runner.run("bench.threshold", inputs)
            first_time = time.perf_counter() - start
            assert first.ok, first.error
            warm = statistics.median(
                timed(lambda: runner.run("bench.threshold", inputs), args.repeat)
            )
        rows.append(
            (
                "isolated worker, first run (spawn + imports)",
                f"{first_time * 1000:.0f} ms",
                f"direct call {d * 1000:.1f} ms",
                f"+{(first_time - d) * 1000:.0f} ms",
            )
        )
        rows.append(
            (
                "isolated worker, warm run (median)",
                f"{warm * 1000:.1f} ms",
                f"direct call {d * 1000:.1f} ms",
                f"+{(warm - d) * 1000:.1f} ms ({(warm - d) / d * 100:.0f} %)",
            )
        )

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, repeat {args.repeat}\n")
    print("| measurement | workstation | peer | ratio / overhead |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
