"""What a plugin declares, as plain data: analyses, readers, GUI panels and their parameters.

Declarations are read when plugins are listed, so they hold no code, only names of code:
``entry = "my_plugin.model:run"`` is imported when the analysis runs, never when it is listed.
That keeps `workstation plugins` and the window's start-up fast however many plugins are
installed, and lets a plugin whose model needs torch be listed on a machine without a GPU.
"""

from __future__ import annotations

import argparse
import difflib
import enum
import importlib
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workstation.core.results import RESULT_TYPES
from workstation.plugins.errors import RunRefused

PARAMETER_TYPES = ("int", "float", "bool", "choice", "str")
DEVICES = ("cpu", "prefers_gpu", "needs_gpu")
_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_ENTRY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_MODALITY = re.compile(r"^[A-Z][A-Z0-9]{0,15}$")  # a DICOM Modality code: CT, MR, PT, US, ...
_TRUE = {"1", "true", "yes", "on", "y"}
_FALSE = {"0", "false", "no", "off", "n"}


class DeclarationError(ValueError):
    """A declaration is malformed; the message names the analysis/reader and the field."""


class ParameterError(RunRefused, ValueError):
    """A parameter value the user gave cannot be used; the message names the parameter. Raised
    by the host before the run, or by an analysis itself: either way the run is refused."""


class InputKind(enum.StrEnum):
    """What an analysis takes: an image series (given as a `Volume`), a patient's records, or both
    (declare both kinds)."""

    IMAGE_SERIES = "image_series"
    PATIENT_RECORDS = "patient_records"


@dataclass(frozen=True)
class Parameter:
    """One typed parameter. The GUI form and the CLI's ``--param name=value`` are made from it.

    `type` is one of "int", "float", "bool", "choice", "str". `min`/`max` bound numbers
    (inclusive), `choices` lists the values of a "choice". `help` is required: it is the form's
    tooltip and the CLI's description.
    """

    name: str
    type: str
    default: Any = None
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""
    label: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple(str(c) for c in self.choices))
        if not self.name.isidentifier():
            raise DeclarationError(f"parameter name {self.name!r} is not an identifier")
        if self.type not in PARAMETER_TYPES:
            raise DeclarationError(
                f"parameter {self.name!r}: type {self.type!r} is not one of "
                + ", ".join(PARAMETER_TYPES)
            )
        if self.type == "choice" and not self.choices:
            raise DeclarationError(f"parameter {self.name!r}: a choice needs `choices`")
        if self.default is not None:
            try:
                object.__setattr__(self, "default", self.coerce(self.default))
            except ParameterError as error:
                raise DeclarationError(f"default of {error}") from None

    @property
    def display_label(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    def coerce(self, value: Any) -> Any:
        """Turn a CLI string or a Python value into this parameter's type and check its range."""
        try:
            converted = self._convert(value)
        except (TypeError, ValueError):
            raise ParameterError(
                f"parameter {self.name!r}: {value!r} is not a valid {self.type}"
            ) from None
        if self.type in ("int", "float"):
            if self.min is not None and converted < self.min:
                raise ParameterError(
                    f"parameter {self.name!r}: {converted} is below the minimum {self.min}"
                )
            if self.max is not None and converted > self.max:
                raise ParameterError(
                    f"parameter {self.name!r}: {converted} is above the maximum {self.max}"
                )
        if self.type == "choice" and converted not in self.choices:
            raise ParameterError(
                f"parameter {self.name!r}: {converted!r} is not one of {', '.join(self.choices)}"
            )
        return converted

    def _convert(self, value: Any) -> Any:
        if self.type == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError(value)
        if self.type == "int":
            if isinstance(value, bool):
                raise ValueError(value)
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError(value)
                return int(value)
            return int(str(value).strip())
        if self.type == "float":
            if isinstance(value, bool):
                raise ValueError(value)
            result = float(str(value).strip()) if isinstance(value, str) else float(value)
            if result != result:  # NaN
                raise ValueError(value)
            return result
        return str(value)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "default": self.default,
            "min": self.min,
            "max": self.max,
            "choices": list(self.choices),
            "help": self.help,
            "label": self.display_label,
        }


@dataclass(frozen=True)
class AnalysisSpec:
    """An analysis a plugin contributes, declared as data.

    - `id`: stable dotted id users type and run records keep, e.g. "threshold.segment".
    - `entry`: "module:function" run as ``function(ctx: RunContext) -> Result | list[Result]``;
      imported only when the analysis runs, so it may import torch/monai at its top level.
    - `inputs`: the `InputKind`s it takes; `returns`: result kinds (see `RESULT_TYPES`).
    - `device`: "cpu" (never touches a GPU), "prefers_gpu" or "needs_gpu" (refused without one).
    - `weights`: a file/folder path, or "package:relative/path" inside an installed package.
    - `timeout`: default time limit in seconds (None = no limit); the user may override it.
    - `modalities`: the DICOM modalities (e.g. ("CT",) or ("CT", "MR")) of the image series
      it is made for; the host refuses a series of another modality before the run. Empty:
      any modality. A series whose modality is unknown (a NIfTI file) runs, with a warning.
    - `inputs_optional`: the analysis also runs with none of its `inputs` given (a generator
      that may take a series to match but needs none).
    - `train_entry`: "module:function" run by ``workstation train`` as
      ``function(ctx: TrainContext) -> None`` to train this analysis's model on series the user
      chose (see `workstation.plugins.training`); None when the analysis cannot be trained.
    """

    id: str
    title: str
    version: str
    entry: str
    description: str = ""
    inputs: tuple[InputKind, ...] = (InputKind.IMAGE_SERIES,)
    parameters: tuple[Parameter, ...] = ()
    returns: tuple[str, ...] = ()
    device: str = "cpu"
    weights: str | None = None
    timeout: float | None = 600.0
    inputs_optional: bool = False
    train_entry: str | None = None
    modalities: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        where = f"analysis {self.id!r}"
        if not isinstance(self.id, str) or not _ID.match(self.id):
            raise DeclarationError(
                f"{where}: id must be dotted lower-case words, e.g. 'threshold.segment'"
            )
        if not self.title or not self.version:
            raise DeclarationError(f"{where}: title and version are required")
        if not isinstance(self.entry, str) or not _ENTRY.match(self.entry):
            raise DeclarationError(f"{where}: entry {self.entry!r} must be 'module:function'")
        if self.train_entry is not None and not _ENTRY.match(str(self.train_entry)):
            raise DeclarationError(
                f"{where}: train_entry {self.train_entry!r} must be 'module:function'"
            )
        try:
            kinds = tuple(InputKind(k) for k in _as_tuple(self.inputs))
        except ValueError as error:
            raise DeclarationError(f"{where}: {error}") from None
        if not kinds:
            raise DeclarationError(f"{where}: inputs must name at least one InputKind")
        object.__setattr__(self, "inputs", kinds)
        params = tuple(_as_tuple(self.parameters))
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            raise DeclarationError(f"{where}: parameter names repeat: {names}")
        object.__setattr__(self, "parameters", params)
        returns = tuple(_as_tuple(self.returns))
        unknown = [r for r in returns if r not in RESULT_TYPES]
        if unknown:
            raise DeclarationError(
                f"{where}: unknown result kinds {unknown}; known: {', '.join(RESULT_TYPES)}"
            )
        object.__setattr__(self, "returns", returns)
        if self.device not in DEVICES:
            raise DeclarationError(
                f"{where}: device {self.device!r} is not one of {', '.join(DEVICES)}"
            )
        if self.timeout is not None and self.timeout <= 0:
            raise DeclarationError(f"{where}: timeout must be positive seconds or None")
        modalities = tuple(str(m).strip().upper() for m in _as_tuple(self.modalities))
        bad = [m for m in modalities if not _MODALITY.match(m)]
        if bad:
            raise DeclarationError(
                f"{where}: modalities {bad} are not DICOM modality codes such as 'CT' or 'MR'"
            )
        object.__setattr__(self, "modalities", modalities)

    def takes_modality(self, modality: str | None) -> bool:
        """Whether a series of `modality` is what this analysis is made for; an unknown
        modality ("" or None) is not refused."""
        return not self.modalities or not modality or modality.upper() in self.modalities

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise ParameterError(
            f"{self.id} has no parameter {name!r}"
            + _did_you_mean(name, [p.name for p in self.parameters])
        )

    def coerce_parameters(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults overlaid with `given` (CLI strings or Python values), each coerced and checked.
        Unknown names and missing required values (no default) raise ParameterError."""
        given = dict(given or {})
        values: dict[str, Any] = {}
        for name in given:
            self.parameter(name)  # unknown name -> ParameterError
        for p in self.parameters:
            if p.name in given:
                values[p.name] = p.coerce(given[p.name])
            elif p.default is not None:
                values[p.name] = p.default
            else:
                raise ParameterError(
                    f"{self.id}: parameter {p.name!r} has no default; give a value"
                )
        return values

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "version": self.version,
            "description": self.description,
            "inputs": [k.value for k in self.inputs],
            "parameters": [p.to_dict() for p in self.parameters],
            "returns": list(self.returns),
            "device": self.device,
            "weights": self.weights,
            "timeout": self.timeout,
            "entry": self.entry,
            "inputs_optional": self.inputs_optional,
            "train_entry": self.train_entry,
            "modalities": list(self.modalities),
        }


@dataclass(frozen=True)
class ReaderSpec:
    """A file reader for another image format. `entry` is "module:function" called as
    ``function(path: str) -> Volume`` (LPS geometry, modality values); imported only when a
    matching file is opened. `extensions` are lower-case with the dot, e.g. (".nii", ".nii.gz")."""

    id: str
    title: str
    extensions: tuple[str, ...]
    entry: str
    version: str = ""

    def __post_init__(self) -> None:
        exts = tuple(e.lower() for e in _as_tuple(self.extensions))
        if not exts or not all(e.startswith(".") for e in exts):
            raise DeclarationError(
                f"reader {self.id!r}: extensions must start with '.', got {exts}"
            )
        object.__setattr__(self, "extensions", exts)
        if not _ENTRY.match(self.entry):
            raise DeclarationError(
                f"reader {self.id!r}: entry {self.entry!r} must be 'module:function'"
            )

    def matches(self, path: str | Path) -> bool:
        return str(path).lower().endswith(self.extensions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "extensions": list(self.extensions),
            "entry": self.entry,
            "version": self.version,
        }


@dataclass(frozen=True)
class PanelSpec:
    """An optional extra GUI panel. `factory` is "module:function" called by the GUI as
    ``factory(parent) -> QWidget``; only the GUI imports it, and nothing else may depend on it."""

    id: str
    title: str
    factory: str
    analyses: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not _ENTRY.match(self.factory):
            raise DeclarationError(
                f"panel {self.id!r}: factory {self.factory!r} must be 'module:function'"
            )
        object.__setattr__(self, "analyses", tuple(_as_tuple(self.analyses)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "factory": self.factory,
            "analyses": list(self.analyses),
        }


def add_parameter_arguments(parser: argparse.ArgumentParser, spec: AnalysisSpec) -> None:
    """Add one ``--name VALUE`` flag per parameter (underscores become dashes), typed, ranged
    and defaulted from the declaration, for scripts that wrap a single analysis."""
    for p in spec.parameters:

        def convert(text: str, p: Parameter = p) -> Any:
            try:
                return p.coerce(text)
            except ParameterError as error:
                raise argparse.ArgumentTypeError(str(error)) from None

        extra = f" (one of {', '.join(p.choices)})" if p.type == "choice" else ""
        parser.add_argument(
            "--" + p.name.replace("_", "-"),
            dest=p.name,
            type=convert,
            default=p.default,
            required=p.default is None,
            metavar=p.type.upper(),
            help=f"{p.help}{extra} [default: {p.default}]",
        )


def resolve_entry(entry: str) -> Callable[..., Any]:
    """Import "module:function" (function may be dotted: "mod:Class.method") and return it."""
    module_name, _, attr = entry.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise DeclarationError(
                f"entry {entry!r}: module {module_name!r} has no {attr!r}"
            ) from None
    if not callable(obj):
        raise DeclarationError(f"entry {entry!r} is not callable")
    return obj


def resolve_weights(weights: str | Path | None) -> Path | None:
    """A declared weights location as a path: "package:relative/path" is looked up inside the
    installed package (importing only that package), anything else is a file-system path."""
    if weights is None:
        return None
    text = str(weights)
    package, _, resource = text.partition(":")
    if is_package_resource(text):
        from importlib.resources import files

        return Path(str(files(package).joinpath(resource)))
    return Path(text).expanduser().absolute()


def check_user_weights(path: Path | None) -> Path | None:
    """Weights the user chose (`--weights`, the GUI), as an absolute path; refused with
    `ParameterError` before the run starts when nothing is there."""
    if path is None:
        return None
    path = path.absolute()
    if not path.exists():
        raise ParameterError(
            f"weights {path}: no such file or folder (give a checkpoint file or a MONAI bundle "
            "folder)"
        )
    return path


def weights_sha256(path: str | Path | None) -> str | None:
    """SHA-256 of a weights file (what `sha256sum` prints), or over every file of a bundle
    folder (as `workstation models trust` computes it); None when there are no weights or they
    cannot be read.

    The same weights run again are not read again: the last `WEIGHTS_DIGESTS_KEPT` digests are
    kept per process, keyed like the model cache (size, modification and change times and inode
    of every file), so a rewrite that puts the old modification time back still hashes anew. A
    file written within `RACY_WINDOW_S` of hashing is not kept, as the model cache does: its
    timestamps may not move on the next write."""
    if path is None or not Path(path).exists():
        return None
    from workstation.models.cache import RACY_WINDOW_S, weights_signature
    from workstation.models.hashing import content_digest, file_sha256

    path = Path(path)
    try:
        signature = weights_signature(path)
        key = (str(path), signature)
        with _WEIGHTS_SHA256_LOCK:
            if key in _WEIGHTS_SHA256:
                _WEIGHTS_SHA256.move_to_end(key)
                return _WEIGHTS_SHA256[key]
        started = time.time_ns()
        digest = file_sha256(path) if path.is_file() else content_digest(path).sha256
    except OSError:
        return None
    newest = max((max(mtime, ctime) for _, _, mtime, ctime, _ in signature), default=0)
    if newest < started - int(RACY_WINDOW_S * 1e9):
        with _WEIGHTS_SHA256_LOCK:
            _WEIGHTS_SHA256[key] = digest
            while len(_WEIGHTS_SHA256) > WEIGHTS_DIGESTS_KEPT:
                _WEIGHTS_SHA256.popitem(last=False)
    return digest


WEIGHTS_DIGESTS_KEPT = 64
_WEIGHTS_SHA256: OrderedDict[tuple, str] = OrderedDict()
_WEIGHTS_SHA256_LOCK = threading.Lock()


def is_package_resource(weights: str | Path | None) -> bool:
    """True for "package:relative/path" (not a Windows drive such as "C:\\models")."""
    if not isinstance(weights, str):
        return False
    package, sep, _ = weights.partition(":")
    return bool(sep) and len(package) > 1 and all(p.isidentifier() for p in package.split("."))


def _as_tuple(value: Any) -> tuple:
    if value is None:
        return ()
    if isinstance(value, str | InputKind):
        return (value,)
    return tuple(value) if isinstance(value, Iterable) else (value,)


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    known = list(known)
    return f"; known: {', '.join(known)}" if known else ""
