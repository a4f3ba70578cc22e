"""docs/writing-plugins.md stays complete and true: every hook, result type, run-context member,
public API name and fixture is documented, and the tutorial quotes the real threshold plugin."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

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
