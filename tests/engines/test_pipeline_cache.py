"""The warm-pipeline cache: least recently used out, per device, by count and by a memory
budget that counts weights and the running requests' working memory; loads outside the
cache's lock; pipelines in use never evicted."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from framegate.engines.base import EngineError, TaskCancelledError
from framegate.engines.diffusers.cache import Geometry, PipelineCache
from framegate.engines.diffusers.pipelines import LoadedPipeline
from framegate.engines.diffusers.settings import DiffusersSettings

GIB = 1024**3


def options(
    name: str, memory_gb: float, device: str = "cuda:0", reserve_gb: float | None = 0
) -> DiffusersSettings:
    return DiffusersSettings(
        family="wan",
        pipeline="WanPipeline",
        weights=f"/models/{name}",
        device=device,
        memory_gb=memory_gb,
        reserve_gb=reserve_gb,
    )


WAN_480P = Geometry(832, 480, 81)


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
    # One that alone exceeds the budget is refused before loading; nothing is evicted.
    with pytest.raises(EngineError) as refused:
        cache.get(options("e", 50), Path("/models/e"))
    assert refused.value.code == "gpu_out_of_memory"
    assert "50.0 GiB of weights" in str(refused.value)
    assert warm(cache) == ["/models/a", "/models/c", "/models/d"]
    assert loader.loaded == ["/models/a", "/models/b", "/models/c", "/models/d"]


def test_count_limit_is_per_device() -> None:
    loader = Loader()
    cache = PipelineCache(max_pipelines=1, budget_bytes=None, loader=loader)
    cache.get(options("a", 1, device="cuda:0"), Path("/models/a"))
    cache.get(options("b", 1, device="cuda:1"), Path("/models/b"))
    assert warm(cache) == ["/models/a", "/models/b"]  # one each: nothing evicted
    cache.get(options("c", 1, device="cuda:0"), Path("/models/c"))  # evicts a, not b
    assert warm(cache) == ["/models/b", "/models/c"]
    assert cache.evictions == 1


def test_reserve_refuses_a_request_that_fits_only_by_weights() -> None:
    loader = Loader()
    cache = PipelineCache(max_pipelines=8, budget_bytes=40 * GIB, loader=loader)
    big = options("big", 30, reserve_gb=None)
    # 30 GiB of weights fit the 40 GiB budget; 30 + 16 GiB of working memory do not.
    cache.record_peak(big, WAN_480P, 16 * GIB)
    with (
        pytest.raises(EngineError) as refused,
        cache.lease(big, Path("/models/big"), geometry=WAN_480P),
    ):
        pass
    assert refused.value.code == "gpu_out_of_memory"
    assert "16.0 GiB of working memory" in str(refused.value)
    assert "832x480x81f" in str(refused.value)
    assert loader.loaded == []  # refused before any load
    # A smaller geometry's reserve is scaled from the measured one and fits.
    small = Geometry(416, 240, 81)
    assert cache.reserve_bytes(big, small) == 4 * GIB
    with cache.lease(big, Path("/models/big"), geometry=small):
        pass
    assert warm(cache) == ["/models/big"]


def test_reserve_evicts_idle_pipelines_of_the_device() -> None:
    loader = Loader()
    cache = PipelineCache(max_pipelines=8, budget_bytes=40 * GIB, loader=loader)
    cache.get(options("a", 10), Path("/models/a"))
    cache.get(options("other", 30, device="cuda:1"), Path("/models/other"))
    b = options("b", 20, reserve_gb=12)
    # 10 + 20 + 12 > 40: a (idle, same device) goes; cuda:1's pipeline stays.
    with cache.lease(b, Path("/models/b"), geometry=WAN_480P) as loaded:
        assert loaded.settings.weights == "/models/b"
        assert warm(cache) == ["/models/other", "/models/b"]


def test_estimated_reserve_before_any_measurement() -> None:
    cache = PipelineCache(max_pipelines=1, budget_bytes=None, loader=Loader())
    settings = options("a", 1, reserve_gb=None)
    assert cache.reserve_bytes(settings, Geometry(16, 16, 5)) == GIB  # the floor
    assert cache.reserve_bytes(settings, Geometry(1280, 720, 81)) == 64 * 1280 * 720 * 81
    assert cache.reserve_bytes(options("a", 1, reserve_gb=3), WAN_480P) == 3 * GIB


def test_a_pipeline_in_use_is_never_evicted() -> None:
    loader = Loader()
    cache = PipelineCache(max_pipelines=1, budget_bytes=None, loader=loader)
    a, b = options("a", 1), options("b", 1)
    released = threading.Event()
    with cache.lease(a, Path("/models/a")):
        # b needs a's place; a is running, so b waits until a's lease ends.
        waiter = threading.Thread(target=lambda: (cache.get(b, Path("/models/b")), released.set()))
        waiter.start()
        assert not released.wait(0.3)
        assert warm(cache) == ["/models/a"]
    waiter.join(5)
    assert released.is_set()
    assert warm(cache) == ["/models/b"]


def test_a_load_does_not_hold_the_cache_lock() -> None:
    started, finish = threading.Event(), threading.Event()
    loader = Loader()

    def slow(settings: DiffusersSettings, weights_dir: Path) -> LoadedPipeline:
        if settings.weights == "/models/slow":
            started.set()
            assert finish.wait(10)
        return loader(settings, weights_dir)

    cache = PipelineCache(max_pipelines=4, budget_bytes=None, loader=slow)
    loading = threading.Thread(target=cache.get, args=(options("slow", 1), Path("/models/slow")))
    loading.start()
    assert started.wait(5)
    # While the slow load runs, another device's pipeline loads and is served.
    fast = cache.get(options("fast", 1, device="cuda:1"), Path("/models/fast"))
    assert fast.settings.weights == "/models/fast"
    # A second request for the pipeline being loaded waits for that load (no second load).
    second: list[LoadedPipeline] = []
    waiter = threading.Thread(
        target=lambda: second.append(cache.get(options("slow", 1), Path("/models/slow")))
    )
    waiter.start()
    finish.set()
    loading.join(5)
    waiter.join(5)
    assert loader.loaded == ["/models/fast", "/models/slow"]
    assert second and second[0].settings.weights == "/models/slow"


def test_cuda_and_cuda_0_are_one_device() -> None:
    loader = Loader()
    cache = PipelineCache(max_pipelines=1, budget_bytes=None, loader=loader)
    plain, indexed = options("a", 1, device="cuda"), options("a", 1, device="cuda:0")
    assert plain.device == "cuda:0" and plain.cache_key() == indexed.cache_key()
    assert cache.get(plain, Path("/models/a")) is cache.get(indexed, Path("/models/a"))
    assert loader.loaded == ["/models/a"]


def test_routes_differing_only_in_sampling_share_a_pipeline() -> None:
    loader = Loader()
    cache = PipelineCache(max_pipelines=2, budget_bytes=None, loader=loader)
    fast = options("a", 1).model_copy(update={"steps": 4, "guidance_scale": 1.0})
    slow = options("a", 1).model_copy(update={"steps": 50})
    assert cache.get(fast, Path("/models/a")) is cache.get(slow, Path("/models/a"))
    compiled = options("a", 1).model_copy(update={"compile": True})
    assert cache.get(compiled, Path("/models/a")) is not cache.get(slow, Path("/models/a"))
    assert loader.loaded == ["/models/a", "/models/a"]


def test_out_of_memory_while_loading_drops_idle_pipelines_and_retries() -> None:
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
    with pytest.raises(EngineError) as failed:
        cache.get(options("x", 1), Path("/models/x"))
    assert failed.value.code == "gpu_out_of_memory"
    assert cache.warm() == []


def test_a_warm_pipeline_over_half_the_budget_serves_request_after_request() -> None:
    # Wan 2.1 14B (about 37 GiB) on an H100 (71 GiB budget): its weights count once.
    cache = PipelineCache(max_pipelines=2, budget_bytes=71 * GIB, loader=Loader())
    wan = options("wan-14b", 37, reserve_gb=20)
    for _ in range(3):
        done = threading.Event()

        def request(done: threading.Event = done) -> None:
            with cache.lease(wan, Path("/models/wan-14b"), geometry=WAN_480P):
                done.set()

        worker = threading.Thread(target=request, daemon=True)
        worker.start()
        assert done.wait(5), "a request to a warm pipeline waited for room it already has"
        worker.join(5)
    assert cache.loads == 1


def test_a_request_waiting_for_room_stops_when_cancelled() -> None:
    cache = PipelineCache(max_pipelines=1, budget_bytes=None, loader=Loader())
    with (
        cache.lease(options("a", 1), Path("/models/a")),
        pytest.raises(TaskCancelledError),
        cache.lease(options("b", 1), Path("/models/b"), stop=lambda: True),
    ):
        pass
    assert warm(cache) == ["/models/a"]


def test_a_geometry_that_ran_out_of_memory_alone_is_refused_next_time() -> None:
    cache = PipelineCache(max_pipelines=2, budget_bytes=40 * GIB, loader=Loader())
    wan = options("wan", 30, reserve_gb=None)
    big = Geometry(1280, 720, 81)  # estimated 4.5 GiB: admitted
    with cache.lease(wan, Path("/models/wan"), geometry=big):
        pass
    cache.record_out_of_memory(wan, big)  # ...but it did not fit in the 10 GiB left
    with pytest.raises(EngineError) as refused, cache.lease(wan, Path("/models/wan"), geometry=big):
        pass
    assert refused.value.code == "gpu_out_of_memory"
    # A quarter of the output scales down to a quarter of that: admitted.
    with cache.lease(wan, Path("/models/wan"), geometry=Geometry(640, 360, 81)):
        pass


def test_the_retry_after_an_out_of_memory_load_runs_outside_the_failed_attempt() -> None:
    import sys

    import torch

    loader = Loader()
    handling: list[object] = []

    def flaky(settings: DiffusersSettings, weights_dir: Path) -> LoadedPipeline:
        if settings.weights == "/models/b":
            handling.append(sys.exc_info()[0])
            if len(handling) == 1:
                raise torch.OutOfMemoryError("CUDA out of memory")
        return loader(settings, weights_dir)

    cache = PipelineCache(max_pipelines=4, budget_bytes=None, loader=flaky)
    cache.get(options("a", 1), Path("/models/a"))
    cache.get(options("b", 1), Path("/models/b"))
    # The second attempt did not run inside the first one's except block (which keeps
    # the failed attempt's frames, and what they hold on the device, alive).
    assert handling == [None, None]


def test_clear_during_a_load_leaves_no_reserve_and_wakes_waiters() -> None:
    started, finish = threading.Event(), threading.Event()

    def slow(settings: DiffusersSettings, weights_dir: Path) -> LoadedPipeline:
        started.set()
        assert finish.wait(10)
        return Loader()(settings, weights_dir)

    cache = PipelineCache(max_pipelines=4, budget_bytes=100 * GIB, loader=slow)
    errors: list[BaseException] = []

    def load() -> None:
        try:
            with cache.lease(options("a", 1, reserve_gb=2), Path("/models/a"), geometry=WAN_480P):
                pass
        except BaseException as exc:
            errors.append(exc)

    loading = threading.Thread(target=load)
    loading.start()
    assert started.wait(5)
    cache.clear()
    finish.set()
    loading.join(5)
    assert len(errors) == 1 and isinstance(errors[0], EngineError)
    assert cache._running.get("cuda:0", 0) == 0
    assert warm(cache) == []


def test_weights_are_estimated_at_the_dtype_they_load_in(
    pipeline_dir: Callable[[str], Path],
) -> None:
    from framegate.engines.diffusers.pipelines import estimate_bytes, load_pipeline

    directory = pipeline_dir("wan-t2v")  # saved in float32
    settings = DiffusersSettings(
        family="wan", pipeline="WanPipeline", weights=str(directory), device="cpu"
    )
    on_disk = sum(
        f.stat().st_size for f in directory.rglob("*.safetensors") if f.parent.name != "vae"
    )
    estimate = estimate_bytes(settings, directory)
    loaded = load_pipeline(settings, directory)
    # bfloat16 transformer and text encoder, float32 VAE (Wan's default): what loading
    # puts in memory, not the float32 files' size. (The few modules Wan keeps in float32,
    # its norms and time embedding, are under 1 % of a real model; more of a tiny one.)
    assert abs(estimate - loaded.memory_bytes) <= 0.15 * loaded.memory_bytes
    vae = sum(f.stat().st_size for f in (directory / "vae").rglob("*.safetensors"))
    assert estimate < on_disk / 2 + vae + 4096
