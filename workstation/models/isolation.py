"""Keeps each bundle's own Python packages (usually `scripts/`) apart from every other bundle's.

Many model-zoo bundles ship a top-level package named `scripts` and their configs say
``"$import scripts"`` or ``"_target_": "scripts.foo.Bar"``. Python caches modules by name in
`sys.modules`, so in one process the second bundle would silently get the first bundle's
`scripts`. While a bundle is being built (and whenever its objects are used through
`BundleImports.scope()`), the host:

- takes every module named like one of the bundle's top-level packages (``scripts``,
  ``scripts.*``, and any other package or module at the bundle root) out of `sys.modules`,
  keeping them aside;
- puts this bundle's own modules from a previous scope back, and the bundle root first on
  `sys.path`;
- turns off writing of `.pyc` files, so loading never changes the bundle's content hash;
- on exit, keeps this bundle's modules aside for next time and restores everything it took out.

Objects already built keep references to their own modules, so they work after the scope ends.
Code that imports lazily at call time should be called inside ``bundle.imports.scope()``.
The plugin runner also runs bundle analyses in its isolated worker process, so this matters
mostly for in-process runs and tests. A process-wide lock serialises scopes: `sys.path` and
`sys.modules` are global.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

_LOCK = threading.RLock()


# Never taken out of sys.modules, whatever a bundle ships: the host and its libraries.
_PROTECTED = frozenset(sys.stdlib_module_names) | {
    "monai",
    "torch",
    "numpy",
    "ignite",
    "workstation",
}


def bundle_package_names(root: Path) -> set[str]:
    """Top-level names the bundle can be imported by: `scripts` plus any package/module at its
    root, except names of the standard library and of the host's own libraries."""
    names = {"scripts"}
    for child in Path(root).iterdir():
        if child.is_dir() and (child / "__init__.py").exists():
            names.add(child.name)
        elif child.suffix == ".py" and child.stem.isidentifier():
            names.add(child.stem)
    return names - _PROTECTED


def _matching(names: set[str]) -> dict[str, ModuleType]:
    return {
        name: module for name, module in list(sys.modules.items()) if name.split(".", 1)[0] in names
    }


class BundleImports:
    """The import scope of one bundle; `scope()` may be entered any number of times."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.names = bundle_package_names(self.root)
        self._own: dict[str, ModuleType] = {}

    @contextmanager
    def scope(self) -> Iterator[None]:
        with _LOCK:
            others = _matching(self.names)
            for name in others:
                del sys.modules[name]
            sys.modules.update(self._own)
            root = str(self.root)
            sys.path.insert(0, root)
            writes_bytecode = sys.dont_write_bytecode
            sys.dont_write_bytecode = True
            importlib.invalidate_caches()
            try:
                yield
            finally:
                sys.dont_write_bytecode = writes_bytecode
                if root in sys.path:
                    sys.path.remove(root)
                self._own = _matching(self.names)
                for name in self._own:
                    del sys.modules[name]
                sys.modules.update(others)
                importlib.invalidate_caches()
