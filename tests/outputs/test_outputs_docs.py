"""docs/writing-plugins.md stays complete and true: every hook, result type, run-context member,
public API name, model helper and fixture is documented, the tutorial quotes the real threshold
plugin, the sections are numbered and listed, and the MONAI worked example runs as printed."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from workstation.plugins.api import Volume

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "writing-plugins.md"
QUOTE = re.compile(r"<!-- file: (?P<path>[^ ]+) -->\n```[a-z]*\n(?P<body>.*?)```", re.S)


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _section(doc: str, title: str) -> str:
    start = doc.index(f"## {title}")
    end = doc.find("\n## ", start + 1)
    return doc[start : end if end > 0 else None]


def test_every_hook_has_its_own_section(doc):
    from workstation.plugins import hookspecs

    hooks = [n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), "workstation_spec")]
    assert hooks, "no hooks found in workstation.plugins.hookspecs"
    missing = [h for h in hooks if f"### `{h}`" not in doc]
    assert not missing, f"hooks not documented in {DOC.name}: {missing}"


def test_every_result_type_and_kind_is_documented(doc):
    from workstation.core.results import RESULT_TYPES

    section = _section(doc, "9. Result types")
    missing = [
        f"{cls.__name__} ({kind})"
        for kind, cls in RESULT_TYPES.items()
        if f"`{cls.__name__}`" not in section or f"`{kind}`" not in section
    ]
    assert not missing, f"result types not documented in section 9: {missing}"
    written = _section(doc, "10. What the host writes")
    assert [c.__name__ for c in RESULT_TYPES.values() if f"`{c.__name__}`" not in written] == []


def test_every_run_context_member_is_documented(doc):
    from workstation.plugins.context import RunContext

    members = {f.name for f in dataclasses.fields(RunContext)}
    members |= {
        name
        for name, value in vars(RunContext).items()
        if not name.startswith("_") and (callable(value) or isinstance(value, property))
    }
    section = _section(doc, "8. The run context")
    missing = sorted(m for m in members if not re.search(rf"`{m}[`(]", section))
    assert not missing, f"RunContext members not documented in section 8: {missing}"


def test_every_public_api_name_is_mentioned(doc):
    from workstation.plugins import api

    missing = [name for name in api.__all__ if not re.search(rf"[`.@]{name}\b", doc)]
    assert not missing, (
        f"names exported by workstation.plugins.api missing from the page: {missing}"
    )


def test_every_fixture_is_documented(doc):
    from workstation.testing import pytest_plugin

    fixtures = [
        name
        for name, value in vars(pytest_plugin).items()
        if hasattr(value, "_fixture_function_marker")
        or type(value).__name__ == "FixtureFunctionDefinition"
    ]
    assert set(fixtures) >= {"workstation_store", "synthetic_ct_series", "run_analysis"}
    section = _section(doc, "5. Test it")
    assert [f for f in fixtures if f"`{f}`" not in section] == []


def test_the_tutorial_quotes_the_threshold_plugin_exactly(doc):
    quotes = {m["path"]: m["body"] for m in QUOTE.finditer(doc)}
    required = {
        "plugins/threshold/pyproject.toml",
        "plugins/threshold/workstation_threshold/__init__.py",
        "plugins/threshold/workstation_threshold/plugin.py",
        "plugins/threshold/workstation_threshold/segment.py",
        "plugins/threshold/tests/test_threshold_plugin.py",
    }
    assert required <= set(quotes), f"not quoted: {sorted(required - set(quotes))}"
    for path, body in quotes.items():
        assert body == (ROOT / path).read_text(encoding="utf-8"), (
            f"{DOC.name} quotes {path} but the file has changed; paste it again"
        )


def test_the_tutorial_plugin_is_the_installed_threshold_plugin(doc):
    """The analysis id and entry point the page tells users to run are the real ones."""
    from importlib.metadata import entry_points

    assert "workstation run threshold.segment" in doc
    (entry,) = [e for e in entry_points(group="workstation.plugins") if e.name == "threshold"]
    assert f'threshold = "{entry.value}"' in doc


# --- the table of contents and the section numbers ------------------------------------------
HEADING = re.compile(r"^## (?P<number>\d+)\. (?P<title>.+)$", re.M)
TOC_ENTRY = re.compile(r"^- \[(?P<text>[^\]]+)\]\(#(?P<anchor>[^)]+)\)$", re.M)


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def test_sections_are_numbered_in_order_and_all_in_the_table_of_contents(doc):
    headings = [(int(m["number"]), m["title"]) for m in HEADING.finditer(doc)]
    assert [number for number, _ in headings] == list(range(1, len(headings) + 1))
    toc = [(m["text"], m["anchor"]) for m in TOC_ENTRY.finditer(doc[: doc.index("\n## ")])]
    expected = [(f"{n}. {title}", _anchor(f"{n}. {title}")) for n, title in headings]
    assert toc == expected


def test_every_link_inside_the_page_reaches_a_heading(doc):
    anchors = {_anchor(line.lstrip("#").strip()) for line in doc.splitlines() if line[:2] == "##"}
    broken = sorted(set(re.findall(r"\]\(#([^)]+)\)", doc)) - anchors)
    assert not broken, f"links to no heading in {DOC.name}: {broken}"


# --- the models section: the shared MONAI helpers -------------------------------------------
EXAMPLE = re.compile(r"<!-- example: (?P<path>[^ ]+) -->\n```python\n(?P<body>.*?)```", re.S)


def _models_section(doc: str) -> str:
    (number,) = [m["number"] for m in HEADING.finditer(doc) if m["title"] == "Models (MONAI)"]
    return _section(doc, f"{number}. Models (MONAI)")


def test_every_model_helper_is_in_the_plugin_api_and_documented(doc):
    import workstation.models as models
    from workstation.plugins import api

    exported = set(api.__all__)
    missing = sorted(set(models.__all__) - exported - set(api.USER_ONLY_MODEL_NAMES))
    assert not missing, f"workstation.models names not re-exported by plugins.api: {missing}"
    assert {name: getattr(api, name) for name in api.MODEL_NAMES} == {
        name: getattr(models, name) for name in api.MODEL_NAMES
    }
    section = _models_section(doc)
    undocumented = [n for n in models.__all__ if not re.search(rf"[`.@]{n}\b", section)]
    assert not undocumented, (
        f"workstation.models names missing from the models section: {undocumented}"
    )


def test_the_plugin_api_loads_model_code_only_when_a_model_name_is_used():
    code = (
        "import sys\n"
        "import workstation.plugins.api as api\n"
        "print(sorted(m for m in ('workstation.models', 'torch', 'monai') if m in sys.modules))\n"
        "from workstation.plugins.api import load_model, sliding_window\n"
        "print(sorted(m for m in ('workstation.models', 'torch', 'monai') if m in sys.modules))\n"
        "print('load_model' in dir(api), hasattr(api, 'trust'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.split("\n")[:3] == ["[]", "['workstation.models']", "True False"]


@pytest.fixture(scope="module")
def example_package(doc, tmp_path_factory):
    """The worked example's files, written as the package `my_organs` and importable, with a
    small checkpoint (a UNet with 4 and 8 channels) as its shipped weights."""
    import torch

    from workstation.plugins.api import CONFIG_KEY

    root = tmp_path_factory.mktemp("example")
    files = {m["path"]: m["body"] for m in EXAMPLE.finditer(_models_section(doc))}
    assert set(files) == {"my_organs/plugin.py", "my_organs/segment.py"}
    for path, body in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(body, encoding="utf-8")
    (root / "my_organs" / "__init__.py").write_text("", encoding="utf-8")
    sys.path.insert(0, str(root))
    try:
        from my_organs import plugin, segment

        config = dict(segment.DEFAULTS, channels=[4, 8])
        torch.manual_seed(0)
        network = segment.build_network(config)
        (root / "my_organs" / "data").mkdir()
        weights = root / "my_organs" / "data" / "model.pt"
        torch.save({"state_dict": network.state_dict(), CONFIG_KEY: {"channels": [4, 8]}}, weights)
        yield SimpleNamespace(plugin=plugin, segment=segment, network=network, weights=weights)
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == "my_organs" or n.startswith("my_organs.")]:
            del sys.modules[name]


def _phantom() -> Volume:
    """A 12 x 40 x 40 CT-like volume (HU) with a bright ellipsoid, anisotropic voxels."""
    z, y, x = np.mgrid[0:12, 0:40, 0:40]
    inside = ((z - 6) / 4) ** 2 + ((y - 18) / 10) ** 2 + ((x - 22) / 8) ** 2 <= 1
    array = np.where(inside, 120.0, -80.0) + np.random.default_rng(1).normal(0, 20, z.shape)
    return Volume(array.astype(np.float32), spacing=(0.8, 0.8, 2.5), origin=(-16.0, -20.0, 30.0))


EXAMPLE_PARAMS = {"roi_slices": 8, "roi_size": 24, "overlap": 0.25, "sw_batch_size": 2}


def test_the_models_example_runs_and_labels_what_the_network_finds(example_package, run_analysis):
    import torch
    from monai.inferers import sliding_window_inference

    from workstation.plugins.api import model_cache

    spec = example_package.plugin.workstation_analyses()[0]
    volume = _phantom()
    cache = model_cache()
    hits_before = cache.stats().hits
    results = run_analysis(spec, volume, params=EXAMPLE_PARAMS, plugins=[])
    label_map = results.one("label_map")

    # the same network, window and blending, called on MONAI directly
    scaled = (np.clip(volume.array, -200, 300) + 200) / 500
    with torch.no_grad():
        logits = sliding_window_inference(
            torch.from_numpy(scaled.astype(np.float32))[None, None],
            (8, 24, 24),
            2,
            example_package.network.eval(),
            overlap=0.25,
            mode="gaussian",
        )
    np.testing.assert_array_equal(label_map.volume.array, logits.argmax(dim=1)[0].numpy())
    assert label_map.volume.geometry.is_close(volume.geometry)
    assert [(label.value, label.name) for label in label_map.labels] == [(1, "organ")]
    # the shipped weights: the host marks the run, the plugin says so in its description
    assert results.outcome.demo_weights is True
    assert "demo weights" in label_map.description

    again = run_analysis(spec, volume, params=EXAMPLE_PARAMS, plugins=[])
    np.testing.assert_array_equal(again.one("label_map").volume.array, label_map.volume.array)
    if cache.max_entries > 0:
        assert cache.stats().hits > hits_before  # the second run reused the kept network


def test_the_models_example_reports_progress_forward_and_stops_when_cancelled(
    example_package, workstation_store
):
    import threading

    from workstation.plugins.api import AnalysisInputs, Cancelled, RunContext

    reported: list[float] = []
    params = {**EXAMPLE_PARAMS, "precision": "auto"}
    context = RunContext(
        "organs.segment",
        params,
        AnalysisInputs(volume=_phantom()),
        weights=example_package.weights,
        on_progress=lambda fraction, message: reported.append(fraction),
    )
    example_package.segment.run(context)
    assert reported == sorted(reported) and reported[-1] == 1.0
    assert len(reported) > 3  # the sliding window's batches moved it, not only start and end

    cancel = threading.Event()
    cancel.set()
    cancelled = RunContext(
        "organs.segment",
        params,
        AnalysisInputs(volume=_phantom()),
        weights=example_package.weights,
        cancel_flag=cancel,
    )
    with pytest.raises(Cancelled):
        example_package.segment.run(cancelled)


def test_checkpoints_load_without_trust_exactly_as_the_trust_table_says(
    tmp_path, workstation_store
):
    import torch

    from workstation.plugins.api import CONFIG_KEY, CheckpointError, load_model

    def network() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Conv3d(1, 2, 3, padding=1))

    trained = network()
    state = tmp_path / "state.pt"
    torch.save({"state_dict": trained.state_dict(), CONFIG_KEY: {"demo": True}}, state)
    loaded = load_model(state, "cpu", network=network()).network
    assert torch.equal(loaded[0].weight, trained[0].weight)

    scripted = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(trained), scripted)
    sample = torch.ones(1, 1, 4, 4, 4)
    with torch.no_grad():
        assert torch.equal(load_model(scripted, "cpu").network(sample), trained(sample))

    pickled = tmp_path / "pickled.pt"
    torch.save(trained, pickled)
    with pytest.raises(CheckpointError, match=r"pickled\.pt"):
        load_model(pickled, "cpu", network=network())


@pytest.mark.parametrize(
    "name",
    ["load_model", "load_checkpoint", "load_bundle", "sliding_window", "cached_model"],
)
def test_every_parameter_of_the_main_model_helpers_is_documented(doc, name):
    import inspect

    import workstation.models as models

    section = _models_section(doc)
    parameters = inspect.signature(getattr(models, name)).parameters
    missing = [p for p in parameters if not re.search(rf"\b{p}\b", section)]
    assert not missing, f"parameters of {name} not in the models section: {missing}"


def test_the_documented_precision_and_fallback_rules_are_the_real_ones(doc):
    from workstation.plugins.api import PRECISIONS, fallback_plan, resolve_precision

    section = _models_section(doc)
    rows = re.findall(r"^\| `(\w+)` \| [^|]+ \| `(\w+)`", section, re.M)
    assert sorted(asked for asked, _ in rows) == sorted(PRECISIONS)
    assert {asked: resolve_precision("cpu", asked) for asked, _ in rows} == dict(rows)
    plan = fallback_plan(8, "cuda")
    assert plan == [(8, "cuda"), (4, "cuda"), (2, "cuda"), (1, "cuda"), (1, "cpu")]
    assert f"`{plan}`".replace("'", '"') in section
