"""The model cache: what a plugin gets back on the next run, and when it must load again."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest
import torch

from workstation.models import ModelCache, cached_model, load_model, model_cache, trust, untrust
from workstation.models.errors import CheckpointError, UntrustedModel


def tiny_network(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv3d(1, 2, 3, padding=1), torch.nn.ReLU())


def save_weights(path: Path, seed: int) -> Path:
    torch.save(tiny_network(seed).state_dict(), path)
    return path


class Loads:
    """A loader that counts its calls: the cache must call it only on a miss."""

    def __init__(self, path: Path, device: str = "cpu") -> None:
        self.path, self.device, self.calls = path, device, 0

    def __call__(self) -> torch.nn.Module:
        self.calls += 1
        return load_model(self.path, "cpu", network=tiny_network(99)).network


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    return save_weights(tmp_path / "model.pt", seed=1)


def test_hit_returns_the_same_network_object(weights):
    cache, load = ModelCache(), Loads(weights)
    with cache.use(weights, "cpu", "fp32", load, namespace="seg") as first:
        pass
    with cache.use(weights, "cpu", "fp32", load, namespace="seg") as second:
        pass
    assert second is first
    assert load.calls == 1
    assert cache.stats().hits == 1 and cache.stats().misses == 1


def test_rewritten_file_is_loaded_again_with_its_new_weights(weights):
    cache, load = ModelCache(), Loads(weights)
    with cache.use(weights, "cpu", "fp32", load) as first:
        old = first[0].weight.detach().clone()
    # Same size, same path, written right away: timestamps may not move (coarse file system
    # clock), so the content check has to catch it.
    save_weights(weights, seed=2)
    with cache.use(weights, "cpu", "fp32", load) as second:
        new = second[0].weight.detach().clone()
    assert load.calls == 2
    assert second is not first
    assert not torch.equal(old, new)
    assert torch.equal(new, tiny_network(2)[0].weight)
    assert cache.stats().reloads == 1


def test_rewrite_with_the_old_timestamps_is_still_noticed(weights):
    cache, load = ModelCache(), Loads(weights)
    before = weights.stat()
    with cache.use(weights, "cpu", "fp32", load):
        pass
    save_weights(weights, seed=3)
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))  # as if the clock had not moved
    with cache.use(weights, "cpu", "fp32", load) as model:
        assert torch.equal(model[0].weight, tiny_network(3)[0].weight)
    assert load.calls == 2


def test_content_is_hashed_only_while_timestamps_are_racy(weights, monkeypatch):
    import time

    from workstation.models import cache as cache_module

    cache, load = ModelCache(), Loads(weights)
    with cache.use(weights, "cpu", "fp32", load):  # just written: racy
        pass
    hashed = []
    real_digest = cache_module.content_digest
    monkeypatch.setattr(
        cache_module, "content_digest", lambda path: hashed.append(path) or real_digest(path)
    )
    later = time.time_ns() + int(10 * 1e9)
    monkeypatch.setattr(cache_module.time, "time_ns", lambda: later)
    for _ in range(3):
        with cache.use(weights, "cpu", "fp32", load):
            pass
    # checked once more, now that any later write must move the timestamps; then never again
    assert len(hashed) == 1 and load.calls == 1


def test_deleted_file_is_not_served_from_memory(weights):
    cache, load = ModelCache(), Loads(weights)
    with cache.use(weights, "cpu", "fp32", load):
        pass
    weights.unlink()
    missing = pytest.raises(CheckpointError, match=r"model\.pt")
    with missing, cache.use(weights, "cpu", "fp32", load):
        pass
    assert len(cache) == 0


def test_device_precision_and_namespace_are_separate_entries(weights):
    cache, load = ModelCache(), Loads(weights)
    keys = [
        ("cpu", "fp32", "seg"),
        ("cpu", "bf16", "seg"),  # a different precision on the same device
        ("cpu", "fp32", "cls"),  # another plugin's architecture for the same file
        ("meta", "fp32", "seg"),  # another device
    ]
    objects = []
    for device, precision, namespace in keys:
        with cache.use(weights, device, precision, load, namespace=namespace) as model:
            objects.append(model)
    assert load.calls == 4 and len(cache) == 4
    assert len({id(o) for o in objects}) == 4
    key = cache.key(weights, "cpu", "bf16", namespace="seg")
    assert (key.device, key.precision, key.channels_last) == ("cpu", "bf16", False)
    # "auto" on the CPU is fp32: the same entry as asking for fp32
    with cache.use(weights, "cpu", "auto", load, namespace="seg") as model:
        assert model is objects[0]


def test_bound_on_entries_evicts_the_least_recently_used(tmp_path):
    cache = ModelCache(max_entries=2)
    files = [save_weights(tmp_path / f"m{i}.pt", seed=i) for i in range(3)]
    loads = [Loads(f) for f in files]
    for f, load in zip(files[:2], loads[:2]):
        with cache.use(f, "cpu", "fp32", load):
            pass
    with cache.use(files[0], "cpu", "fp32", loads[0]):  # m0 is now the most recent
        pass
    with cache.use(files[2], "cpu", "fp32", loads[2]):
        pass
    assert len(cache) == 2
    assert cache.key(files[1], "cpu", "fp32") not in cache  # least recently used went
    assert cache.key(files[0], "cpu", "fp32") in cache
    assert cache.stats().evictions == 1


def test_bound_on_bytes_counts_parameters_and_skips_models_too_large(tmp_path):
    one = sum(p.numel() * 4 for p in tiny_network().parameters())
    cache = ModelCache(max_entries=10, max_bytes=2 * one)
    files = [save_weights(tmp_path / f"m{i}.pt", seed=i) for i in range(3)]
    for f in files:
        with cache.use(f, "cpu", "fp32", Loads(f)):
            pass
    assert len(cache) == 2 and cache.stats().bytes == 2 * one
    small = ModelCache(max_bytes=one - 1)
    with small.use(files[0], "cpu", "fp32", Loads(files[0])):
        pass
    assert len(small) == 0


def test_zero_entries_turns_caching_off(weights):
    cache, load = ModelCache(max_entries=0), Loads(weights)
    for _ in range(2):
        with cache.use(weights, "cpu", "fp32", load):
            pass
    assert load.calls == 2 and len(cache) == 0


def test_concurrent_run_gets_its_own_copy(weights):
    cache, load = ModelCache(), Loads(weights)
    with cache.use(weights, "cpu", "fp32", load) as held:
        box = {}
        thread = threading.Thread(
            target=lambda: box.update(other=cache.use(weights, "cpu", "fp32", load).__enter__())
        )
        thread.start()
        thread.join()
        assert box["other"] is not held
    with cache.use(weights, "cpu", "fp32", load) as again:
        assert again is held  # the private copy was not kept
    assert load.calls == 2


def test_failed_run_drops_the_model(weights):
    cache, load = ModelCache(), Loads(weights)
    with pytest.raises(RuntimeError), cache.use(weights, "cpu", "fp32", load):
        raise RuntimeError("the analysis failed half-way")
    assert len(cache) == 0


def test_release_device_drops_idle_models_of_that_device_only(weights):
    cache, load = ModelCache(), Loads(weights)
    for device in ("cpu", "meta"):
        with cache.use(weights, device, "fp32", load):
            pass
    assert cache.release_device("meta") == 1
    assert cache.key(weights, "cpu", "fp32") in cache
    with cache.use(weights, "cpu", "fp32", load):
        assert cache.release_device("cpu") == 0  # in use: kept


def test_out_of_memory_while_loading_frees_kept_models_and_retries(tmp_path):
    cache = ModelCache()
    first, second = (save_weights(tmp_path / f"m{i}.pt", seed=i) for i in range(2))
    with cache.use(first, "cpu", "fp32", Loads(first)):
        pass
    attempts = []

    def load_once_out_of_memory():
        attempts.append(1)
        if len(attempts) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return tiny_network()

    with cache.use(second, "cpu", "fp32", load_once_out_of_memory):
        pass
    assert len(attempts) == 2
    assert cache.key(first, "cpu", "fp32") not in cache


def test_sliding_window_out_of_memory_frees_idle_kept_models(weights, monkeypatch):
    from workstation.models import sliding_window

    cache = ModelCache()
    monkeypatch.setattr("workstation.models.cache._CACHE", cache)
    with cached_model(weights, "cpu", "fp32", Loads(weights)):
        pass
    network, calls = tiny_network(), []

    def flaky(window):
        calls.append(window.shape[0])
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return network(window)

    with torch.no_grad():
        sliding_window(flaky, torch.zeros(1, 1, 8, 8, 8), [4, 4, 4], sw_batch_size=4)
    assert len(cache) == 0


def test_untrusting_a_bundle_reloads_it_and_the_load_refuses(make_bundle, store):
    bundle = make_bundle()
    trust(bundle, store)
    cache = ModelCache()

    def load():
        return load_model(bundle, "cpu", store_dir=store)

    with cache.use(bundle, "cpu", "fp32", load, store_dir=store) as first:
        pass
    with cache.use(bundle, "cpu", "fp32", load, store_dir=store) as second:
        assert second is first
    untrust(bundle, store)
    refused = pytest.raises(UntrustedModel, match="not trusted")
    with refused, cache.use(bundle, "cpu", "fp32", load, store_dir=store):
        pass


def test_edited_bundle_file_reloads(make_bundle, store):
    bundle = make_bundle()
    trust(bundle, store)
    cache = ModelCache()

    def load():
        return load_model(bundle, "cpu", store_dir=store)

    with cache.use(bundle, "cpu", "fp32", load, store_dir=store):
        pass
    (bundle / "configs" / "extra.json").write_text("{}")  # any file in the folder counts
    refused = pytest.raises(UntrustedModel, match=r"extra\.json added")
    with refused, cache.use(bundle, "cpu", "fp32", load, store_dir=store):
        pass


def test_logger_is_told_load_or_reuse(weights, caplog):
    cache, logger = ModelCache(), logging.getLogger("test.models.cache")
    with caplog.at_level(logging.INFO, logger="test.models.cache"):
        for _ in range(2):
            with cache.use(weights, "cpu", "fp32", Loads(weights), logger=logger):
                pass
    assert [r.getMessage() for r in caplog.records] == [
        "model loaded from model.pt on cpu",
        "model for model.pt reused from memory (files unchanged)",
    ]


def test_process_cache_bounds_come_from_the_environment(monkeypatch):
    monkeypatch.setattr("workstation.models.cache._CACHE", None)
    monkeypatch.setenv("WORKSTATION_MODEL_CACHE", "0")
    monkeypatch.setenv("WORKSTATION_MODEL_CACHE_MB", "64")
    cache = model_cache()
    assert (cache.max_entries, cache.max_bytes) == (0, 64 << 20)
    assert model_cache() is cache


def test_locked_trust_store_during_the_reuse_check_reloads_and_frees_the_entry(
    make_bundle, store, monkeypatch, caplog
):
    import sqlite3

    import workstation.models.cache as cache_module

    bundle = make_bundle()
    trust(bundle, store)
    cache = ModelCache()

    def load():
        return load_model(bundle, "cpu", store_dir=store)

    with cache.use(bundle, "cpu", "fp32", load, store_dir=store) as first:
        pass
    real_lookup, locked = cache_module._trusted_digest, {"calls": 0}

    def locked_once(path, store_key):
        locked["calls"] += 1
        if locked["calls"] == 1:
            raise sqlite3.OperationalError("database is locked")
        return real_lookup(path, store_key)

    monkeypatch.setattr(cache_module, "_trusted_digest", locked_once)
    logged = caplog.at_level(logging.INFO, logger="workstation.models")
    with logged, cache.use(bundle, "cpu", "fp32", load, store_dir=store) as second:
        assert second is not first  # the check could not finish: loaded again
        assert second.network is not None
    assert "database is locked" in caplog.text
    # The reloaded model is kept and idle: the next run reuses it, clear() drops it.
    with cache.use(bundle, "cpu", "fp32", load, store_dir=store) as third:
        assert third is second
    assert cache.clear() == 1
    assert len(cache) == 0


def test_trust_store_locked_throughout_still_runs_and_keeps_nothing_pinned(
    make_bundle, store, monkeypatch
):
    import sqlite3

    bundle = make_bundle()
    trust(bundle, store)
    cache = ModelCache()

    def load():
        return load_model(bundle, "cpu", store_dir=store)

    with cache.use(bundle, "cpu", "fp32", load, store_dir=store):
        pass

    def locked(path, store_key):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr("workstation.models.cache._trusted_digest", locked)
    for _ in range(2):
        with cache.use(bundle, "cpu", "fp32", load, store_dir=store) as model:
            assert model.network is not None
    assert cache.clear() == 0  # nothing idle left behind...
    assert len(cache) == 0  # ...and nothing busy either


def test_interrupt_during_the_reuse_check_leaves_no_entry_reserved(weights, monkeypatch):
    cache, load = ModelCache(), Loads(weights)
    with cache.use(weights, "cpu", "fp32", load):
        pass

    def interrupted(path):
        raise KeyboardInterrupt

    monkeypatch.setattr("workstation.models.cache.weights_signature", interrupted)
    with pytest.raises(KeyboardInterrupt), cache.use(weights, "cpu", "fp32", load):
        pass
    monkeypatch.undo()
    assert len(cache) == 0
    with cache.use(weights, "cpu", "fp32", load):
        pass
    assert cache.clear() == 1 and len(cache) == 0
