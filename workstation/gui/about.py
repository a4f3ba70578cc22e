"""The About box text: versions of the workstation and its toolkits, and the plugins loaded."""

from __future__ import annotations

import html


def about_text() -> str:
    import pyqtgraph
    import PySide6

    from workstation import __version__

    lines = [
        f"<b>Workstation {html.escape(__version__)}</b>",
        f"PySide6 {PySide6.__version__}, pyqtgraph {pyqtgraph.__version__}",
    ]
    try:
        from workstation.plugins.manager import load_registry

        registry = load_registry()
        names = sorted(f"{e.id} {e.spec.version}" for e in registry.analyses.values())
        lines.append("Analyses: " + (html.escape(", ".join(names)) or "none"))
        lines += [f"Plugin problem: {html.escape(p)}" for p in registry.problems]
    except Exception as error:  # the box still opens when a plugin is broken
        lines.append(f"Plugins could not be listed: {html.escape(str(error))}")
    return "<br>".join(lines)
