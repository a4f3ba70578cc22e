"""Fake analysis plugins for the evaluation tests, written as packages into a temporary folder.

Each plugin records every run as a line in `calls.txt` beside its code, so a test can tell
whether (and with which weights) the analysis ran."""

from __future__ import annotations

import importlib
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from workstation.plugins.manager import Registry, load_registry

# Voxels above `level` are the organ (label 1); it also declares a lesion (label 2) it never
# finds. Its demo weights ship inside the package (weights.bin); weights whose file name starts
# with "untrusted" are refused as the model helpers refuse an untrusted checkpoint.
FAKE_SEGMENTER = """
from pathlib import Path

import numpy as np
from workstation.plugins.api import (
    AnalysisSpec, CheckpointError, Label, LabelMap, Parameter, UntrustedModel, hookimpl,
)

WORKSTATION_PLUGIN_API = "1.0"
HERE = Path(__file__).parent


@hookimpl
def workstation_analyses():
    return [
        AnalysisSpec(
            id="fake.segment",
            title="fake segmenter",
            version="2.5",
            entry=f"{__name__}:run",
            description="voxels above 'level' are the organ",
            returns=["label_map"],
            device="cpu",
            weights=f"{__name__}:weights.bin",
            parameters=(
                Parameter(name="level", type="float", default=0.5, help="threshold"),
                Parameter(name="smooth", type="bool", default=False, help="unused"),
            ),
        )
    ]


def run(ctx):
    with open(HERE / "calls.txt", "a") as handle:
        handle.write(f"{ctx.weights}\\n")
    if ctx.weights is not None and ctx.weights.name.startswith("untrusted"):
        raise UntrustedModel(f"The checkpoint {ctx.weights} is not trusted. Trust it with: x")
    if ctx.weights is not None and ctx.weights.name.startswith("truncated"):
        raise CheckpointError(f"{ctx.weights}: not a readable PyTorch checkpoint")
    organ = (ctx.volume.array > ctx.params["level"]).astype(np.uint8)
    labels = [Label(1, "Organ"), Label(2, "Lesion")]
    return [LabelMap(name="organs", volume=ctx.volume.with_array(organ), labels=labels)]
"""

DEMO_WEIGHTS = b"fake demo weights\n"


class FakePlugin:
    """A plugin package written by `make_plugin`: its folder, registry and recorded runs."""

    def __init__(self, folder: Path, registry: Registry) -> None:
        self.folder = folder
        self.registry = registry

    def calls(self) -> list[str]:
        log = self.folder / "calls.txt"
        return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def make_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakePlugin]:
    """make_plugin(source, files={name: bytes}) -> FakePlugin, importable under a unique name."""

    def make(source: str, files: dict[str, bytes] | None = None) -> FakePlugin:
        name = f"ws_eval_fake_{uuid.uuid4().hex[:8]}"
        root = tmp_path / "plugin_modules"
        package = root / name
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(textwrap.dedent(source))
        for file_name, content in (files or {}).items():
            (package / file_name).write_bytes(content)
        monkeypatch.syspath_prepend(str(root))
        importlib.invalidate_caches()
        registry = load_registry(plugins=[importlib.import_module(name)])
        return FakePlugin(package, registry)

    return make


@pytest.fixture
def fake_segmenter(make_plugin) -> FakePlugin:
    return make_plugin(FAKE_SEGMENTER, {"weights.bin": DEMO_WEIGHTS})
