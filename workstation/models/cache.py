"""Keeps loaded models in memory between runs, so the next run on the same weights skips reading
the file, building the network and moving it to the device (on a small series that was a third
of the run).

A plugin wraps its own loading code; the loader runs only when no usable copy is kept:

    with cached_model(weights, ctx.device, precision, lambda: my_load(weights, ctx.device),
                      namespace="my_plugin.analysis") as model:
        ...  # run it; no other run uses this object meanwhile

What makes two requests the same model: `namespace` (whose loader, i.e. which architecture the
weights go into), the weights' canonical path, the device ("cuda" means the current CUDA
device), the precision actually used and whether the network is channels-last there (see
`precision`), the trust store, and any `extra` values the loader depends on.

- **Changed files reload.** Each entry remembers the size, modification and change times and
  inode of the weights file (of every file, for a bundle folder). A difference drops the entry
  and loads again. A file written less than `RACY_WINDOW_S` before it was loaded may change again
  without its timestamps moving (file systems stamp with a coarse clock), so such an entry is
  also checked by content hash on reuse until it is older than that (what git calls racily
  clean).
- **Bounded.** At most `max_entries` models and `max_bytes` of parameters and buffers; the least
  recently used idle model goes first. A model larger than the whole bound is not kept.
- **Out of GPU memory.** `release_device(device)` drops the idle models on that device;
  `sliding_window` calls it before retrying, and a load that runs out of memory calls it and
  tries once more.
- **One run at a time per object.** A run may change its network's state (Grad-CAM hooks,
  gradients), so while a run holds a model a concurrent run of the same key gets a private copy
  that is not kept. A run that raises drops its model: the next run loads a clean one.
- **Trust.** A model whose weights were trusted when it was loaded (a bundle, a pickled
  checkpoint) is reused only while the store still holds the same trust record; untrusting it
  reloads it, and the load refuses it.

There is one cache per process (`model_cache()`); the isolated worker is a long-lived process, so
the analyses it runs share its cache. Environment: `WORKSTATION_MODEL_CACHE` = the number of
models kept (0 turns caching off, default 4), `WORKSTATION_MODEL_CACHE_MB` = the size bound
(default 4096).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from workstation.models.hashing import content_digest, content_files
from workstation.models.precision import as_device, prefers_channels_last, resolve_precision

log = logging.getLogger("workstation.models")

T = TypeVar("T")

RACY_WINDOW_S = 2.0
DEFAULT_MAX_ENTRIES = 4
DEFAULT_MAX_MB = 4096

FileSignature = tuple[tuple[str, int, int, int, int], ...]


@dataclass(frozen=True)
class ModelKey:
    """What must match for a kept model to be handed out again."""

    namespace: str
    path: str
    device: str
    precision: str
    channels_last: bool
    store: str
    extra: tuple[Hashable, ...] = ()


@dataclass(frozen=True)
class CacheStats:
    entries: int
    bytes: int
    hits: int
    misses: int
    reloads: int
    evictions: int


@dataclass
class _Entry:
    value: Any
    signature: FileSignature
    nbytes: int
    trust: str | None
    racy_digest: str | None
    newest_ns: int
    busy: bool = False


def weights_signature(path: Path) -> FileSignature:
    """(relative path, size, mtime_ns, ctime_ns, inode) of the file, or of every file in a
    bundle folder; any edit, replacement, addition or removal changes it."""
    signature = []
    for relative, file in content_files(path):
        info = file.stat()
        signature.append((relative, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino))
    return tuple(signature)


def _newest_ns(signature: FileSignature) -> int:
    return max((max(mtime, ctime) for _, _, mtime, ctime, _ in signature), default=0)


def device_name(device: Any) -> str:
    """ "cpu", "cuda:0", ...: a CUDA device without an index is the current one."""
    target = as_device(device)
    if target.type == "cuda" and target.index is None:
        import torch

        index = torch.cuda.current_device() if torch.cuda.is_available() else 0
        return f"cuda:{index}"
    return str(target)


def model_nbytes(value: Any) -> int:
    """Bytes of parameters and buffers of the torch modules in `value`: the value itself, or
    its attributes one level down (a plugin's model record holding `.network`)."""
    import torch

    candidates = [value] if isinstance(value, torch.nn.Module) else []
    if not candidates and hasattr(value, "__dict__"):
        candidates = [v for v in vars(value).values() if isinstance(v, torch.nn.Module)]
    seen: set[int] = set()
    total = 0
    for module in candidates:
        for tensor in [*module.parameters(), *module.buffers()]:
            if id(tensor) not in seen:
                seen.add(id(tensor))
                total += tensor.numel() * tensor.element_size()
    return total


def _is_out_of_memory(error: BaseException) -> bool:
    return type(error).__name__ == "OutOfMemoryError"


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return max(0, int(text))
    except ValueError:
        log.warning("%s=%r is not a whole number; using %d", name, text, default)
        return default


class ModelCache:
    """A bounded, least-recently-used store of loaded models (see the module docstring).
    Thread-safe; `max_entries=0` turns it off (every `use` loads)."""

    def __init__(
        self, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int | None = None
    ) -> None:
        self.max_entries = max(0, int(max_entries))
        self.max_bytes = DEFAULT_MAX_MB << 20 if max_bytes is None else max(0, int(max_bytes))
        self._entries: OrderedDict[ModelKey, _Entry] = OrderedDict()
        self._lock = threading.RLock()
        self._hits = self._misses = self._reloads = self._evictions = 0

    # --- public -----------------------------------------------------------------------------
    def key(
        self,
        weights: str | os.PathLike[str],
        device: Any = "cpu",
        precision: str = "auto",
        *,
        namespace: str = "",
        store_dir: str | os.PathLike[str] | None = None,
        extra: tuple[Hashable, ...] = (),
    ) -> ModelKey:
        """The key `use` files a model under."""
        return ModelKey(
            namespace=namespace,
            path=str(Path(weights).expanduser().resolve()),
            device=device_name(device),
            precision=resolve_precision(device, precision),
            channels_last=prefers_channels_last(device, precision),
            store=str(Path(store_dir).expanduser().resolve()) if store_dir is not None else "",
            extra=tuple(extra),
        )

    @contextmanager
    def use(
        self,
        weights: str | os.PathLike[str],
        device: Any,
        precision: str,
        load: Callable[[], T],
        *,
        namespace: str = "",
        store_dir: str | os.PathLike[str] | None = None,
        extra: tuple[Hashable, ...] = (),
        logger: logging.Logger | None = None,
    ) -> Iterator[T]:
        """Yield the model for these weights: the kept one if its files are unchanged and no
        other run holds it, else what `load()` returns (kept for next time when it fits).
        `logger` (e.g. the run context's) is told which of the two happened."""
        key = self.key(
            weights, device, precision, namespace=namespace, store_dir=store_dir, extra=extra
        )
        path = Path(key.path)
        entry = self._take(key, path)
        reused = entry is not None
        if entry is None:
            entry = self._load(key, path, load)
        try:
            if logger is not None and reused:
                logger.info("model for %s reused from memory (files unchanged)", path.name)
            elif logger is not None:
                logger.info("model loaded from %s on %s", path.name, key.device)
            yield entry.value
        except BaseException:
            self._drop(key, entry)  # the run may have left the network half-changed
            raise
        finally:
            with self._lock:
                entry.busy = False

    def release_device(self, device: Any) -> int:
        """Drop the idle models on `device` ("cuda" means every CUDA device); returns how many.
        Called when that device runs out of memory."""
        target = as_device(device)
        name = device_name(device) if target.index is not None else None
        with self._lock:
            doomed = [
                key
                for key, entry in self._entries.items()
                if not entry.busy
                and (key.device == name if name else key.device.split(":")[0] == target.type)
            ]
            for key in doomed:
                del self._entries[key]
            self._evictions += len(doomed)
        if doomed:
            log.info("dropped %d kept model(s) from %s to free memory", len(doomed), target)
        return len(doomed)

    def clear(self) -> int:
        """Drop every idle model; returns how many."""
        with self._lock:
            doomed = [key for key, entry in self._entries.items() if not entry.busy]
            for key in doomed:
                del self._entries[key]
            return len(doomed)

    def configure(self, max_entries: int | None = None, max_bytes: int | None = None) -> None:
        """Change the bounds; models over the new bounds are dropped now."""
        with self._lock:
            if max_entries is not None:
                self.max_entries = max(0, int(max_entries))
            if max_bytes is not None:
                self.max_bytes = max(0, int(max_bytes))
            self._shrink()

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                entries=len(self._entries),
                bytes=sum(e.nbytes for e in self._entries.values()),
                hits=self._hits,
                misses=self._misses,
                reloads=self._reloads,
                evictions=self._evictions,
            )

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries

    # --- internals --------------------------------------------------------------------------
    def _take(self, key: ModelKey, path: Path) -> _Entry | None:
        """The kept entry, marked busy, if it is still valid and idle; None means load."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.busy:
                return None
            entry.busy = True  # reserve it while checking outside the lock
        valid = False
        try:
            valid = self._still_valid(key, path, entry)
        finally:
            if not valid:  # also on an interrupt: a dropped entry is never left reserved
                self._drop(key, entry)
                entry.busy = False
        if valid:
            with self._lock:
                self._entries.move_to_end(key)
                self._hits += 1
            return entry
        with self._lock:
            self._reloads += 1
        return None

    def _still_valid(self, key: ModelKey, path: Path, entry: _Entry) -> bool:
        """Whether the kept model may be handed out; anything that stops the check from
        finishing (an unreadable file, a locked trust store) means load again, which reports
        a real problem itself."""
        try:
            if weights_signature(path) != entry.signature:
                return _changed(path, "weights changed since they were loaded")
            if entry.trust is not None and _trusted_digest(path, key.store) != entry.trust:
                return _changed(path, "trust record changed since they were loaded")
            if entry.racy_digest is not None:
                checked_at = time.time_ns()
                if content_digest(path).sha256 != entry.racy_digest:
                    return _changed(path, "weights changed since they were loaded")
                if checked_at - int(RACY_WINDOW_S * 1e9) > entry.newest_ns:
                    entry.racy_digest = None  # later writes will move the timestamps
        except Exception as error:
            log.info("cannot check the kept model for %s (%s); loading it again", path, error)
            return False
        return True

    def _load(self, key: ModelKey, path: Path, load: Callable[[], Any]) -> _Entry:
        with self._lock:
            self._misses += 1
        caching = self.max_entries > 0
        signature: FileSignature = ()
        racy_digest = trust = None
        if caching:
            try:
                started = time.time_ns()
                signature = weights_signature(path)
                if _newest_ns(signature) >= started - int(RACY_WINDOW_S * 1e9):
                    racy_digest = content_digest(path).sha256
                trust = _trusted_digest(path, key.store)
            except OSError:
                caching = False  # the loader reports the missing or unreadable file
            except Exception as error:  # e.g. a locked trust store: run it, keep nothing
                log.info("not keeping the model for %s (%s)", path, error)
                caching = False
        value = self._call_loader(key, load)
        entry = _Entry(value, signature, 0, trust, racy_digest, _newest_ns(signature), busy=True)
        if not caching:
            return entry
        try:
            unchanged = weights_signature(path) == signature
        except OSError:
            unchanged = False
        entry.nbytes = model_nbytes(value)
        if not unchanged or entry.nbytes > self.max_bytes:
            return entry  # changed while loading, or too large to keep: this run only
        with self._lock:
            if key in self._entries:  # a concurrent run kept its copy first
                return entry
            self._entries[key] = entry
            self._shrink()
        return entry

    def _call_loader(self, key: ModelKey, load: Callable[[], Any]) -> Any:
        try:
            return load()
        except Exception as error:
            if not _is_out_of_memory(error) or not self.release_device(key.device):
                raise
        _empty_cuda_cache(key.device)
        return load()

    def _drop(self, key: ModelKey, entry: _Entry) -> None:
        with self._lock:
            if self._entries.get(key) is entry:
                del self._entries[key]

    def _shrink(self) -> None:
        """Evict least recently used idle entries until within both bounds (lock held)."""
        while len(self._entries) > self.max_entries or (
            sum(e.nbytes for e in self._entries.values()) > self.max_bytes
        ):
            idle = next((k for k, e in self._entries.items() if not e.busy), None)
            if idle is None:
                return  # every kept model is in use; the bound holds again once they finish
            del self._entries[idle]
            self._evictions += 1


def _changed(path: Path, why: str) -> bool:
    log.info("%s: %s; loading them again", path, why)
    return False


def _trusted_digest(path: Path, store: str) -> str | None:
    from workstation.models.trust import trusted_digest

    return trusted_digest(path, store or None)


def _empty_cuda_cache(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


_CACHE: ModelCache | None = None
_CACHE_LOCK = threading.Lock()


def model_cache() -> ModelCache:
    """This process's cache (bounds from `WORKSTATION_MODEL_CACHE` / `_MB` at first use)."""
    global _CACHE
    with _CACHE_LOCK:
        if _CACHE is None:
            _CACHE = ModelCache(
                _env_int("WORKSTATION_MODEL_CACHE", DEFAULT_MAX_ENTRIES),
                _env_int("WORKSTATION_MODEL_CACHE_MB", DEFAULT_MAX_MB) << 20,
            )
        return _CACHE


def cached_model(
    weights: str | os.PathLike[str],
    device: Any,
    precision: str,
    load: Callable[[], T],
    *,
    namespace: str = "",
    store_dir: str | os.PathLike[str] | None = None,
    extra: tuple[Hashable, ...] = (),
    logger: logging.Logger | None = None,
) -> Any:
    """``model_cache().use(...)``: a context manager yielding the model (see `ModelCache.use`)."""
    return model_cache().use(
        weights,
        device,
        precision,
        load,
        namespace=namespace,
        store_dir=store_dir,
        extra=extra,
        logger=logger,
    )
