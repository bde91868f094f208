"""The warm-pipeline cache: least recently used out, by count and by a memory budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from framegate.engines.diffusers.pipelines import LoadedPipeline, PipelineCache
from framegate.engines.diffusers.settings import DiffusersSettings

GIB = 1024**3


def options(name: str, memory_gb: float, device: str = "cuda:0") -> DiffusersSettings:
    return DiffusersSettings(
        family="wan",
        pipeline="WanPipeline",
        weights=f"/models/{name}",
        device=device,
        memory_gb=memory_gb,
    )


class Loader:
    def __init__(self) -> None:
        self.loaded: list[str] = []

    def __call__(self, settings: DiffusersSettings, weights_dir: Path) -> LoadedPipeline:
        self.loaded.append(settings.weights)
        memory = int((settings.memory_gb or 0) * GIB)
        return LoadedPipeline(object(), settings, memory, frozenset())


def warm(cache: PipelineCache) -> list[str]:
    return [settings.weights for settings in cache.warm()]


def test_lru_by_count() -> None:
    loader = Loader()
    cache = PipelineCache(max_pipelines=2, budget_bytes=100 * GIB, loader=loader)
    a, b, c = options("a", 1), options("b", 1), options("c", 1)
    first = cache.get(a, Path("/models/a"))
    cache.get(b, Path("/models/b"))
    assert cache.get(a, Path("/models/a")) is first  # warm: not loaded again
    cache.get(c, Path("/models/c"))  # evicts b, the least recently used
    assert warm(cache) == ["/models/a", "/models/c"]
    assert loader.loaded == ["/models/a", "/models/b", "/models/c"]
    assert (cache.loads, cache.evictions) == (3, 1)


def test_memory_budget_evicts_before_loading() -> None:
    loader = Loader()
    cache = PipelineCache(max_pipelines=8, budget_bytes=40 * GIB, loader=loader)
    cache.get(options("a", 15), Path("/models/a"))
    cache.get(options("b", 15), Path("/models/b"))
    cache.get(options("a", 15), Path("/models/a"))  # a is now the most recent
    cache.get(options("c", 20), Path("/models/c"))  # 15 + 15 + 20 > 40: b goes
    assert warm(cache) == ["/models/a", "/models/c"]
    # Pipelines on another device do not count against this one's budget.
    cache.get(options("d", 30, device="cuda:1"), Path("/models/d"))
    assert warm(cache) == ["/models/a", "/models/c", "/models/d"]
    # One that alone exceeds the budget still loads (the operator sized it), alone.
    cache.get(options("e", 50), Path("/models/e"))
    assert warm(cache) == ["/models/d", "/models/e"]


def test_routes_differing_only_in_sampling_share_a_pipeline() -> None:
    loader = Loader()
    cache = PipelineCache(max_pipelines=2, budget_bytes=None, loader=loader)
    fast = options("a", 1).model_copy(update={"steps": 4, "guidance_scale": 1.0})
    slow = options("a", 1).model_copy(update={"steps": 50})
    assert cache.get(fast, Path("/models/a")) is cache.get(slow, Path("/models/a"))
    compiled = options("a", 1).model_copy(update={"compile": True})
    assert cache.get(compiled, Path("/models/a")) is not cache.get(slow, Path("/models/a"))
    assert loader.loaded == ["/models/a", "/models/a"]


def test_out_of_memory_while_loading_drops_warm_pipelines_and_retries() -> None:
    import torch

    loader = Loader()
    failures = iter([True])

    def flaky(settings: DiffusersSettings, weights_dir: Path) -> LoadedPipeline:
        if settings.weights == "/models/b" and next(failures, False):
            raise torch.OutOfMemoryError("CUDA out of memory")
        return loader(settings, weights_dir)

    cache = PipelineCache(max_pipelines=4, budget_bytes=None, loader=flaky)
    cache.get(options("a", 1), Path("/models/a"))
    cache.get(options("b", 1), Path("/models/b"))
    assert warm(cache) == ["/models/b"]


def test_out_of_memory_with_nothing_to_evict_propagates() -> None:
    import torch

    def exhausted(settings: DiffusersSettings, weights_dir: Path) -> LoadedPipeline:
        raise torch.OutOfMemoryError("CUDA out of memory")

    cache = PipelineCache(max_pipelines=1, loader=exhausted)
    with pytest.raises(torch.OutOfMemoryError):
        cache.get(options("x", 1), Path("/models/x"))
    assert cache.warm() == []
