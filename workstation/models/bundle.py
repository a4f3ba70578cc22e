"""Loading a MONAI bundle (model-zoo layout) into a ready network plus its transforms.

Layout: ``configs/inference.json`` (or .yaml), ``configs/metadata.json``, ``models/model.pt``
(or ``model.ts``), optional ``scripts/`` and ``large_files.yml``. The loader:

1. refuses an untrusted bundle before anything in it runs (`trust.require_trusted`);
2. reads metadata.json as plain JSON and reports version differences as warnings;
3. checks the weights file is there (never downloads what large_files.yml names);
4. adapts the config to this machine (`bundle_config.adapt_config`);
5. builds ``network_def`` (or ``network``), ``preprocessing``, ``postprocessing`` and ``inferer``
   with `monai.bundle.ConfigParser` inside the bundle's import scope (`isolation`);
6. loads the weights with `checkpoint.load_checkpoint` and puts the network in eval mode.

A config entry that fails to build becomes one `BundleBuildError` paragraph naming the bundle,
the failing entry and the versions involved. Handlers, data loaders and evaluators are never
built: the host feeds volumes itself, so the bundle's own training/evaluation machinery is unused.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workstation.models.bundle_config import adapt_config
from workstation.models.checkpoint import is_torchscript, load_checkpoint
from workstation.models.errors import BundleBuildError, BundleError, ModelError
from workstation.models.isolation import BundleImports
from workstation.models.metadata import (
    BundleMetadata,
    installed_version,
    large_file_urls,
    read_metadata,
    version_warnings,
)
from workstation.models.precision import as_device
from workstation.models.quiet import library_messages_to_log
from workstation.models.review import read_json
from workstation.models.trust import canonical_path, require_trusted

log = logging.getLogger("workstation.models")

WEIGHT_FILES = ("models/model.pt", "models/model.ts")
OPTIONAL_ENTRIES = ("preprocessing", "postprocessing", "inferer")
SCRATCH_PREFIX = "workstation-bundle-"


@dataclass
class LoadedBundle:
    """A built bundle. `network` is on `device` in eval mode; transforms are None when the
    config does not define them. Use `get(entry)` for other config entries, and run bundle
    objects that import lazily inside ``with bundle.imports.scope():``."""

    path: Path
    network: Any
    metadata: BundleMetadata
    device: Any
    preprocessing: Any = None
    postprocessing: Any = None
    inferer: Any = None
    config_file: Path | None = None
    weights_file: Path | None = None
    scratch_dir: Path | None = None
    warnings: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    parser: Any = None
    imports: BundleImports | None = None

    @property
    def labels(self) -> dict[int, str]:
        return self.metadata.labels

    def get(self, entry: str) -> Any:
        """Build another config entry (e.g. "sw_batch_size") inside the bundle's import scope."""
        return _build(self.parser, entry, self.imports, self.metadata, self.path)


def find_config(bundle: Path, name: str = "inference") -> Path:
    for suffix in (".json", ".yaml", ".yml"):
        candidate = bundle / "configs" / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    present = (
        sorted(p.name for p in (bundle / "configs").glob("*"))
        if (bundle / "configs").is_dir()
        else []
    )
    raise BundleError(
        f"{bundle}: no configs/{name}.json (or .yaml) in this bundle"
        + (f"; configs/ holds {', '.join(present)}" if present else "; there is no configs/ folder")
    )


def find_weights(bundle: Path) -> Path:
    """models/model.pt (or model.ts); if missing, say which URL large_files.yml names."""
    for relative in WEIGHT_FILES:
        if (bundle / relative).is_file():
            return bundle / relative
    urls = large_file_urls(bundle)
    listed = {path: url for path, url in urls.items() if path in WEIGHT_FILES}
    if listed:
        path, url = next(iter(listed.items()))
        hint = (
            f" large_files.yml names {url or '(no URL)'} for {path}; the workstation never "
            f"downloads by itself: fetch it yourself, put it at {bundle / path}, then trust the "
            f"bundle again."
        )
    else:
        hint = " Put the trained weights there (the bundle's large_files.yml lists none)."
    raise BundleError(f"{bundle}: weights file {WEIGHT_FILES[0]} is missing.{hint}")


def _read_config(path: Path) -> dict[str, Any]:
    if path.suffix == ".json":
        content = read_json(path)
    else:
        try:
            from monai.bundle import ConfigParser

            content = ConfigParser.load_config_file(path)
        except ImportError as error:
            raise BundleError(f"{path}: YAML configs need the PyYAML package ({error})") from None
        except Exception as error:
            raise BundleError(f"{path}: cannot read: {error}") from None
    if not isinstance(content, dict):
        raise BundleError(f"{path}: expected a JSON object at the top level")
    return content


def _failing_entry(error: BaseException, fallback: str) -> str:
    """The deepest config id MONAI was building when it failed (from the traceback)."""
    from monai.bundle.config_item import ConfigItem

    found = fallback
    tb = error.__traceback__
    while tb is not None:
        candidate = tb.tb_frame.f_locals.get("self")
        if isinstance(candidate, ConfigItem) and candidate.get_id():
            found = candidate.get_id()
        tb = tb.tb_next
    return found


def _root_cause(error: BaseException) -> str:
    messages = []
    current: BaseException | None = error
    while current is not None and len(messages) < 4:
        text = " ".join(str(current).split()).replace(
            " set '_mode_=debug' to enter the debugging mode.", ""
        )
        messages.append(f"{type(current).__name__}: {text[:300].rstrip('. ')}")
        current = current.__cause__ or current.__context__
    return messages[-1] if len(messages) == 1 else f"{messages[-1]} (while: {messages[0]})"


def _build(
    parser: Any, entry: str, imports: BundleImports | None, meta: BundleMetadata, path: Path
) -> Any:
    scope = imports.scope() if imports is not None else _no_scope()
    try:
        with scope, library_messages_to_log():
            return parser.get_parsed_content(entry)
    except Exception as error:
        failing = _failing_entry(error, entry)
        raise BundleBuildError(
            f"The bundle '{meta.name}'{f' {meta.version}' if meta.version else ''} ({path}) could "
            f"not be built on this installation: config entry '{failing}'"
            f"{f' (needed by {entry!r})' if failing != entry else ''} failed with "
            f"{_root_cause(error)}. The bundle was tested with MONAI {meta.monai_version or '?'} "
            f"and PyTorch {meta.pytorch_version or '?'}; this workstation has MONAI "
            f"{installed_version('monai')} and PyTorch {installed_version('torch')}. Check that "
            f"the bundle suits this MONAI version, or ask its authors for an updated release.",
            entry=failing,
        ) from None


@contextmanager
def _no_scope() -> Iterator[None]:
    yield


def load_bundle(
    path: str | Path,
    device: Any = "cpu",
    *,
    trusted_check: bool = True,
    store_dir: str | Path | None = None,
    scratch_dir: str | Path | None = None,
    config_name: str = "inference",
    num_workers: int | None = None,
    weights: str | Path | None = None,
) -> LoadedBundle:
    """Build a trusted MONAI bundle for inference on `device` (see the module docstring).

    `trusted_check=False` skips the trust check; only for bundles shipped inside an installed
    plugin package (their code is already trusted by installing it). `scratch_dir` receives any
    outputs the config redirects (default: a new temporary folder, removed when the returned
    `LoadedBundle` is garbage-collected or the interpreter exits). `weights` overrides
    models/model.pt. Raises `UntrustedModel`, `BundleError` or `BundleBuildError`."""
    bundle = canonical_path(path)
    if not bundle.is_dir():
        raise BundleError(f"{bundle}: not a bundle folder (expected configs/ and models/ inside)")
    config_file = find_config(bundle, config_name)
    if trusted_check:
        require_trusted(bundle, store_dir)
    meta = read_metadata(bundle)
    weights_file = Path(weights) if weights is not None else find_weights(bundle)
    warnings = version_warnings(meta)
    for warning in warnings:
        log.warning(warning)

    target = as_device(device)
    owned = not scratch_dir  # a folder made here is removed here
    scratch = Path(scratch_dir) if scratch_dir else Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX))
    try:
        scratch.mkdir(parents=True, exist_ok=True)
        with library_messages_to_log():
            loaded = _build_bundle(
                bundle,
                config_file,
                meta,
                weights_file,
                weights,
                warnings,
                target,
                scratch,
                trusted_check,
                store_dir,
                num_workers,
            )
    except BaseException:
        if owned:
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    if owned:
        # Lives as long as the bundle object (a kept model's outputs may go there): removed when
        # it is collected (e.g. the model cache dropped it) or when the interpreter exits.
        weakref.finalize(loaded, shutil.rmtree, str(scratch), ignore_errors=True)
    return loaded


def _build_bundle(
    bundle: Path,
    config_file: Path,
    meta: BundleMetadata,
    weights_file: Path,
    weights: str | Path | None,
    warnings: list[str],
    target: Any,
    scratch: Path,
    trusted_check: bool,
    store_dir: str | Path | None,
    num_workers: int | None,
) -> LoadedBundle:
    from monai.bundle import ConfigParser

    config, overrides = adapt_config(
        _read_config(config_file), bundle, str(target), scratch, num_workers
    )

    parser = ConfigParser()
    parser.read_meta(dict(meta.raw))
    parser.read_config(config)
    imports = BundleImports(bundle)
    network_entry = "network_def" if "network_def" in config else "network"
    if network_entry not in config:
        raise BundleError(f"{config_file}: defines neither 'network_def' nor 'network'")
    network = _build(parser, network_entry, imports, meta, bundle)
    if not hasattr(network, "load_state_dict"):
        raise BundleBuildError(
            f"{config_file}: entry '{network_entry}' built a {type(network).__name__}, "
            f"not a torch network",
            entry=network_entry,
        )
    built = {
        entry: _build(parser, entry, imports, meta, bundle)
        for entry in OPTIONAL_ENTRIES
        if entry in config
    }
    try:
        # Weights inside a trusted bundle are covered by its trust; a separate file needs its own.
        inside = weights is None or not trusted_check
        network = load_checkpoint(
            network,
            weights_file,
            target,
            allow_pickle=True if inside else None,
            store_dir=store_dir,
        )
    except ModelError as error:
        raise BundleError(f"bundle '{meta.name}' ({bundle}): {error}") from None
    return LoadedBundle(
        path=bundle,
        network=network,
        metadata=meta,
        device=target,
        preprocessing=built.get("preprocessing"),
        postprocessing=built.get("postprocessing"),
        inferer=built.get("inferer"),
        config_file=config_file,
        weights_file=weights_file,
        scratch_dir=scratch,
        warnings=warnings,
        overrides=overrides,
        parser=parser,
        imports=imports,
    )


def load_model(
    path: str | Path,
    device: Any = "cpu",
    *,
    network: Any = None,
    store_dir: str | Path | None = None,
    scratch_dir: str | Path | None = None,
) -> LoadedBundle:
    """What a plugin calls with the weights the user chose: a bundle folder goes through
    `load_bundle` (trust required); a checkpoint file is loaded into `network` (the plugin's own
    architecture) with `load_checkpoint`. Either way the result is a `LoadedBundle`; for a
    checkpoint it has no transforms and metadata named after the file."""
    source = canonical_path(path)
    if source.is_dir():
        return load_bundle(source, device, store_dir=store_dir, scratch_dir=scratch_dir)
    if network is None and not is_torchscript(source):
        raise BundleError(
            f"{source}: a checkpoint file holds weights only; this analysis needs a MONAI bundle "
            f"folder (configs/ + models/) or its own network architecture for these weights"
        )
    loaded = load_checkpoint(network, source, device, store_dir=store_dir)
    return LoadedBundle(
        path=source,
        network=loaded,
        metadata=BundleMetadata(name=source.name),
        device=as_device(device),
        weights_file=source,
    )
