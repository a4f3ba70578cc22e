"""Trust is checked in the store the run uses (`workstation --store DIR run`), for a plugin
that passes no store to the model helpers (written before `RunContext.store_dir` existed) and
for the built-in segmentation, in-process and in the isolated worker; trust held only in another
store never opens a bundle, and the refusal's command names the run's store."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from workstation.cli import main
from workstation.models.cache import model_cache
from workstation.models.trust import store_for_run, trust, trust_command
from workstation.plugins.manager import load_registry
from workstation.plugins.runner import Runner
from workstation.testing.bundles import write_bundle_folder

LOADING_PLUGIN = """
from workstation.plugins.api import (
    AnalysisSpec, Report, cached_model, hookimpl, require_trusted,
)

WORKSTATION_PLUGIN_API = "1.1"  # inputs_optional


@hookimpl
def workstation_analyses():
    return [
        AnalysisSpec(
            id="trusting.load", title="Loads a bundle", version="1.0",
            entry=f"{__name__}:load", description="checks trust as a 1.0 plugin does",
            returns=["report"], inputs_optional=True,
        ),
        AnalysisSpec(
            id="trusting.cached", title="Keeps a bundle", version="1.0",
            entry=f"{__name__}:cached", description="keeps the loaded model between runs",
            returns=["report"], inputs_optional=True,
        ),
    ]


def load(ctx):
    require_trusted(ctx.weights)  # no store_dir: the host's choice of store must hold
    return Report(name="loaded", text=str(getattr(ctx, "store_dir", None)))


class Model:
    pass


def cached(ctx):
    def load():
        require_trusted(ctx.weights)
        return Model()

    with cached_model(ctx.weights, "cpu", "fp32", load, namespace="trusting.cached") as model:
        return Report(name="kept", text=str(id(model)))
"""


@pytest.fixture
def loading_plugin(write_module):
    return importlib.import_module(write_module(LOADING_PLUGIN))


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A folder in bundle layout; trusting it records the hash of its files."""
    folder = tmp_path / "bundle"
    (folder / "configs").mkdir(parents=True)
    (folder / "configs" / "inference.json").write_text('{"imports": ["$import os"]}')
    (folder / "configs" / "metadata.json").write_text('{"name": "B", "version": "1"}')
    return folder


@pytest.mark.parametrize("isolated", [False, True], ids=["in-process", "isolated"])
def test_a_bundle_trusted_in_the_runs_store_loads(loading_plugin, bundle, tmp_path, isolated):
    store = tmp_path / "store-a"
    trust(bundle, store)  # only there: the default store does not know it
    with Runner(load_registry([loading_plugin]), store_dir=store, isolated=isolated) as runner:
        outcome = runner.run("trusting.load", weights=bundle)
    assert outcome.outcome == "succeeded", outcome.error
    assert outcome.results[0].text == str(store)  # ctx.store_dir is the run's store


@pytest.mark.parametrize("isolated", [False, True], ids=["in-process", "isolated"])
def test_trust_in_the_default_store_does_not_count_in_another(
    loading_plugin, bundle, tmp_path, isolated
):
    trust(bundle)  # the default store ($WORKSTATION_HOME)
    other = tmp_path / "store-b"
    with Runner(load_registry([loading_plugin]), store_dir=other, isolated=isolated) as runner:
        outcome = runner.run("trusting.load", weights=bundle)
    assert outcome.outcome == "refused"
    assert outcome.user_facing
    assert f"workstation --store {other} models trust {bundle.resolve()}" in outcome.error


def test_a_model_kept_from_a_run_on_one_store_is_not_handed_to_a_run_on_another(
    loading_plugin, bundle, tmp_path
):
    store_a, store_b = tmp_path / "a", tmp_path / "b"
    trust(bundle, store_a)
    registry = load_registry([loading_plugin])
    with Runner(registry, store_dir=store_a, isolated=False) as runner:
        first = runner.run("trusting.cached", weights=bundle)
        again = runner.run("trusting.cached", weights=bundle)
    assert first.ok and again.ok
    if model_cache().max_entries > 0:  # kept between runs on store A
        assert again.results[0].text == first.results[0].text
    with Runner(registry, store_dir=store_b, isolated=False) as runner:
        elsewhere = runner.run("trusting.cached", weights=bundle)
    assert elsewhere.outcome == "refused"
    assert f"--store {store_b} models trust" in elsewhere.error


def test_the_trust_command_names_the_store_in_use(tmp_path, monkeypatch):
    bundle = tmp_path / "b"
    default = tmp_path / "home"
    monkeypatch.setenv("WORKSTATION_HOME", str(default))
    assert trust_command(bundle) == f"workstation models trust {bundle}"
    with store_for_run(tmp_path / "other"):
        assert trust_command(bundle) == (
            f"workstation --store {tmp_path / 'other'} models trust {bundle}"
        )
        assert trust_command(bundle, default) == f"workstation models trust {bundle}"
    with store_for_run(default):
        assert trust_command(bundle) == f"workstation models trust {bundle}"


# --- the built-in segmentation, through `workstation run` -----------------------------------
def tiny_bundle(folder: Path) -> Path:
    """Zoo layout, a 1x1x1 convolution as network, tested with an older MONAI (a warning)."""
    import torch

    config = {
        "bundle_root": ".",
        "device": "$torch.device('cpu')",
        "network_def": {
            "_target_": "torch.nn.Conv3d",
            "in_channels": 1,
            "out_channels": 2,
            "kernel_size": 1,
        },
        "network": "$@network_def.to(@device)",
    }
    metadata = {
        "name": "Tiny dense tissue",
        "version": "0.1.0",
        "monai_version": "1.2.0",
        "pytorch_version": "2.13.0",
        "network_data_format": {
            "outputs": {
                "pred": {
                    "type": "image",
                    "format": "segmentation",
                    "channel_def": {"0": "background", "1": "dense"},
                }
            }
        },
    }
    state = {
        "weight": torch.tensor([-10.0, 10.0]).reshape(2, 1, 1, 1, 1),
        "bias": torch.tensor([5.0, -5.0]),
    }
    return write_bundle_folder(folder, config, metadata, state)


@pytest.fixture(scope="module")
def dicom_ct(tmp_path_factory) -> Path:
    from workstation.testing.synthetic import make_synthetic_ct_series

    root = tmp_path_factory.mktemp("trust-ct")
    make_synthetic_ct_series(root / "dicom", root / "index", shape=(4, 24, 24), lesions=1)
    return root / "dicom"


def test_the_builtin_segmentation_checks_trust_in_the_runs_store(
    dicom_ct, tmp_path, capsys, monkeypatch
):
    pytest.importorskip("workstation_monai_segmentation")
    monkeypatch.setenv("WORKSTATION_MODEL_CACHE", "0")
    bundle = tiny_bundle(tmp_path / "bundle")
    store_a, store_b = tmp_path / "a", tmp_path / "b"
    trust(bundle, store_a)

    def run(store: Path, out: str) -> int:
        args = ["--input", str(dicom_ct), "--weights", str(bundle), "--out", str(tmp_path / out)]
        return main(["--store", str(store), "run", "monai_segmentation.ct", *args, "--in-process"])

    assert run(store_a, "ok") == 0
    manifest = json.loads((tmp_path / "ok" / "run.json").read_text())
    assert manifest["mode"] == "in-process"
    assert any("tested with MONAI 1.2.0" in note for note in manifest["notes"])

    capsys.readouterr()
    assert run(store_b, "refused") == 2  # trusted in A, not in B
    err = capsys.readouterr().err
    assert f"workstation --store {store_b} models trust {bundle.resolve()}" in err
    assert "Traceback" not in err
