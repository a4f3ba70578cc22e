"""Every hook a workstation plugin can implement. This module is the plugin contract.

A plugin is a light module (registered under the ``workstation.plugins`` entry-point group) that
sets ``WORKSTATION_PLUGIN_API = "1.0"`` and implements some of the hooks below with
``@hookimpl``. Hooks return declarations (plain data); the code that does the work is named by
a "module:function" string and imported only when it runs. The module holding the hooks must
stay light: no torch, monai or model code at its top level (`workstation plugins check`
fails a plugin that imports torch when listed), so listing plugins stays fast.

Each hook is called once per plugin when plugins are listed; an exception raised by a hook marks
that plugin broken (with the error) and the others carry on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from workstation.plugins.declarations import AnalysisSpec, PanelSpec, ReaderSpec

PROJECT_NAME = "workstation"
ENTRY_POINT_GROUP = "workstation.plugins"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

HOOK_NAMES = ("workstation_analyses", "workstation_readers", "workstation_gui_panels")
"""Every hook in this module; the plugin-author docs must describe each one."""


@hookspec
def workstation_analyses() -> list[AnalysisSpec]:
    """Return the analyses this plugin contributes, as `AnalysisSpec` declarations.

    Build them from constants only; do not load a model or import torch here. Each spec's
    `entry` ("module:function") is imported and called as ``function(ctx) -> Result |
    list[Result]`` when the user runs the analysis, with a `RunContext` giving the input volume
    or patient, the coerced parameters, the device, progress, cancellation, a logger, a scratch
    folder, the weights path and a seed. Keep `id` stable across versions: run records and the
    user's scripts refer to it.
    """


@hookspec
def workstation_readers() -> list[ReaderSpec]:
    """Return readers for image formats other than DICOM, as `ReaderSpec` declarations.

    A reader's `entry` ("module:function") is called as ``function(path: str) -> Volume`` when
    the user opens a file whose name ends with one of its `extensions` (``workstation run
    --input``, the GUI's open dialog). Return the volume in LPS patient coordinates with modality
    values (convert from RAS explicitly); raise an error naming the file when it cannot be read.
    """


@hookspec
def workstation_gui_panels() -> list[PanelSpec]:
    """Optional, GUI only: return extra Qt panels, as `PanelSpec` declarations.

    The GUI imports a panel's `factory` ("module:function") and calls ``factory(parent)`` to get
    a QWidget. Headless runs never call it, and no analysis may depend on a panel: results are
    always plain data the host shows and writes itself.
    """
