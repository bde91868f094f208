"""The warm-pipeline cache: which pipelines stay loaded on which GPU, and whether a request
fits.

A worker keeps each route's pipeline warm in a small LRU cache bounded, per device, by a
count and a memory budget. The budget counts each warm pipeline's weights and each running
request's working memory (activations and the VAE decode: its reserve, see
``PipelineCache.reserve_bytes``); a request that cannot fit evicts the least recently used
idle pipelines of its device first, and one that cannot fit even alone is refused before it
runs. Pipelines load outside the cache's lock, so a load on one GPU never stalls another;
a pipeline in use is never evicted. Everything here runs on the engine's inference threads.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from framegate.engines.base import EngineError, TaskCancelledError
from framegate.engines.diffusers.pipelines import (
    LoadedPipeline,
    derive_pipeline,
    device_memory_bytes,
    estimate_bytes,
    load_pipeline,
    out_of_memory_error,
    out_of_memory_types,
    release_device_memory,
)
from framegate.engines.diffusers.settings import DiffusersSettings

log = logging.getLogger(__name__)

_GIB = 1024**3
# Share of a CUDA device's memory the budget may use when none is configured (the CUDA
# context, cuBLAS workspaces and the allocator's fragmentation take the rest).
DEFAULT_BUDGET_SHARE = 0.9
# How often a request waiting for room checks whether it was cancelled.
_WAIT_SECONDS = 0.5
# Working memory of a request before one of its geometry has been measured: bytes per
# output pixel per frame (per image), and a floor. Measured peaks replace it.
RESERVE_BYTES_PER_OUTPUT_VALUE = 64
MIN_RESERVE_BYTES = 1 * _GIB


@dataclass(frozen=True, slots=True)
class Geometry:
    """The size of one request's output: what its working memory scales with."""

    width: int
    height: int
    frames: int = 1
    count: int = 1

    @property
    def values(self) -> int:
        return self.width * self.height * max(1, self.frames) * max(1, self.count)

    def __str__(self) -> str:
        frames = f"x{self.frames}f" if self.frames > 1 else ""
        count = f" x{self.count}" if self.count > 1 else ""
        return f"{self.width}x{self.height}{frames}{count}"


@dataclass
class _Entry:
    settings: DiffusersSettings
    # Counted weights: the estimate while loading, then what the loaded pipeline holds.
    weight_bytes: int
    loaded: LoadedPipeline | None = None  # None while loading
    users: int = 0


class PipelineCache:
    """Warm pipelines by cache key, least recently used first out, per device.

    ``budget_bytes`` caps, on each device, the warm pipelines' weights plus the reserves of
    the requests running there (None: 90 % of the device's memory for CUDA, no cap on the
    CPU); ``max_pipelines`` caps the number of warm pipelines per device in any case.
    ``device_memory`` tells a device's total memory (a parameter for tests).
    """

    def __init__(
        self,
        *,
        max_pipelines: int,
        budget_bytes: int | None = None,
        loader: Callable[[DiffusersSettings, Path], LoadedPipeline] = load_pipeline,
        device_memory: Callable[[str], int | None] = device_memory_bytes,
    ) -> None:
        self._max = max(1, max_pipelines)
        self._budget = budget_bytes
        self._loader = loader
        self._device_memory = device_memory
        self._budgets: dict[str, int | None] = {}
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        # Reserves of the running requests, per device.
        self._running: dict[str, int] = {}
        # Measured working memory per (cache key, geometry): the peak over the weights.
        self._peaks: dict[tuple[str, Geometry], int] = {}
        # Pipelines whose settings failed to load (invalid_settings), by cache key.
        self._broken: dict[str, EngineError] = {}
        self._changed = threading.Condition()
        self.loads = 0
        self.evictions = 0

    # -- reading -------------------------------------------------------------------------

    def warm(self, device: str | None = None) -> list[DiffusersSettings]:
        """Settings of the warm pipelines (of one device), least recently used first."""
        with self._changed:
            return [
                e.settings
                for e in self._entries.values()
                if e.loaded is not None and (device is None or e.settings.device == device)
            ]

    def budget(self, device: str) -> int | None:
        if self._budget is not None:
            return self._budget
        if device not in self._budgets:
            total = self._device_memory(device)
            self._budgets[device] = None if total is None else int(total * DEFAULT_BUDGET_SHARE)
        return self._budgets[device]

    def reserve_bytes(self, settings: DiffusersSettings, geometry: Geometry) -> int:
        """Working memory a request of this geometry needs beyond the weights: the route's
        reserve_gb; else the measured peak of this geometry, or the largest measured one
        scaled by output size; else a rough estimate by output size."""
        if settings.reserve_gb is not None:
            return int(settings.reserve_gb * _GIB)
        key = settings.cache_key()
        with self._changed:
            exact = self._peaks.get((key, geometry))
            if exact is not None:
                return exact
            scaled = [
                peak * geometry.values // max(1, measured.values)
                for (k, measured), peak in self._peaks.items()
                if k == key
            ]
        if scaled:
            return max(scaled)
        return max(MIN_RESERVE_BYTES, RESERVE_BYTES_PER_OUTPUT_VALUE * geometry.values)

    def record_peak(self, settings: DiffusersSettings, geometry: Geometry, peak: int) -> None:
        """A request's measured working memory (device peak over what was allocated before)."""
        with self._changed:
            self._peaks[(settings.cache_key(), geometry)] = max(0, peak)

    # -- leasing -------------------------------------------------------------------------

    @contextmanager
    def lease(
        self,
        settings: DiffusersSettings,
        weights_dir: Path,
        *,
        variant: str | None = None,
        geometry: Geometry | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> Iterator[LoadedPipeline]:
        """The warm pipeline for these settings, loaded if needed and kept from eviction
        until the block ends; with ``variant``, that pipeline class over the same
        components. Raises EngineError when the request cannot fit the device's budget,
        TaskCancelledError when ``stop()`` turns true while it waits for room."""
        reserve = 0 if geometry is None else self.reserve_bytes(settings, geometry)
        key = settings.cache_key()
        device = settings.device
        loaded = self._acquire(settings, weights_dir, key, reserve, geometry, stop)
        try:
            if variant is not None and variant != settings.pipeline:
                with self._changed:
                    derived = loaded.variants.get(variant)
                    if derived is None:
                        derived = derive_pipeline(loaded, variant)
                        loaded.variants[variant] = derived
                loaded = derived
            yield loaded
        finally:
            with self._changed:
                entry = self._entries.get(key)
                if entry is not None:
                    entry.users -= 1
                self._running[device] = self._running.get(device, 0) - reserve
                self._changed.notify_all()

    def get(
        self, settings: DiffusersSettings, weights_dir: Path, *, variant: str | None = None
    ) -> LoadedPipeline:
        """The warm pipeline (loaded if needed), not held: for inspection and warming, so
        with no working memory reserved; requests take a :meth:`lease`."""
        with self.lease(settings, weights_dir, variant=variant) as loaded:
            return loaded

    def _acquire(
        self,
        settings: DiffusersSettings,
        weights_dir: Path,
        key: str,
        reserve: int,
        geometry: Geometry | None,
        stop: Callable[[], bool] | None,
    ) -> LoadedPipeline:
        device = settings.device
        budget = self.budget(device)
        with self._changed:
            while True:
                broken = self._broken.get(key)
                if broken is not None:
                    raise EngineError(str(broken), code=broken.code)
                entry = self._entries.get(key)
                if entry is None or entry.loaded is not None:
                    weights = entry.weight_bytes if entry else estimate_bytes(settings, weights_dir)
                    if budget is not None and weights + reserve > budget:
                        raise EngineError(
                            _too_large(settings, weights, reserve, budget, geometry),
                            code="gpu_out_of_memory",
                        )
                    # A warm pipeline's weights are counted already: it needs its reserve.
                    needed = reserve if entry else weights + reserve
                    if self._make_room(device, needed, keep=key, adding=entry is None):
                        break
                # Another thread is loading this pipeline, or pipelines in use hold the
                # room: wait for a change (or a cancel).
                self._changed.wait(timeout=_WAIT_SECONDS)
                if stop is not None and stop():
                    raise TaskCancelledError
            self._running[device] = self._running.get(device, 0) + reserve
            if entry is not None:
                entry.users += 1
                self._entries.move_to_end(key)
                assert entry.loaded is not None
                return entry.loaded
            self._entries[key] = _Entry(settings, weights, users=1)
        # Loading takes minutes for large models: never under the lock.
        try:
            loaded = self._load(settings, weights_dir, key)
        except BaseException as exc:
            with self._changed:
                if isinstance(exc, EngineError) and exc.code == "invalid_settings":
                    # A settings error does not heal: no reload per request to find it again.
                    self._broken[key] = exc
                self._entries.pop(key, None)
                self._running[device] = self._running.get(device, 0) - reserve
                self._changed.notify_all()
            raise
        with self._changed:
            entry = self._entries.get(key)
            if entry is None:  # cleared while loading (shutting down)
                self._running[device] = self._running.get(device, 0) - reserve
                self._changed.notify_all()
                raise EngineError("the engine is shutting down", code="engine_error")
            entry.loaded = loaded
            entry.weight_bytes = loaded.memory_bytes
            self.loads += 1
            self._changed.notify_all()
            if budget is not None and self._used(device) > budget:
                # Counted now from the loaded parameters: make room after the fact.
                self._make_room(device, 0, keep=key, adding=False)
                if self._used(device) > budget:
                    log.warning(
                        "%s on %s is over the memory budget (%.1f of %.1f GiB) with "
                        "nothing idle left to evict",
                        settings.pipeline,
                        device,
                        self._used(device) / _GIB,
                        budget / _GIB,
                    )
        return loaded

    def _load(self, settings: DiffusersSettings, weights_dir: Path, key: str) -> LoadedPipeline:
        out_of_memory = False
        try:
            return self._loader(settings, weights_dir)
        except out_of_memory_types():
            # Retried below, once this frame no longer holds the failed attempt's traceback
            # (and with it what it had put on the device).
            out_of_memory = True
        assert out_of_memory
        release_device_memory()
        # Whatever else is idle on the device may be what is in the way: drop it, once.
        if not self.evict_idle(settings.device, keep=key):
            raise out_of_memory_error()
        log.warning("out of memory loading %s; evicted idle pipelines", settings.pipeline)
        return self._loader(settings, weights_dir)

    def record_out_of_memory(self, settings: DiffusersSettings, geometry: Geometry) -> None:
        """A request ran out of memory alone on its device: remember that this geometry
        needs more than was free, so the next such request is refused before it runs."""
        key = settings.cache_key()
        with self._changed:
            entry = self._entries.get(key)
            budget = self.budget(settings.device)
            if entry is None or budget is None:
                return
            free = budget - entry.weight_bytes
            self._peaks[(key, geometry)] = max(self._peaks.get((key, geometry), 0), free + 1)

    def _used(self, device: str) -> int:
        weights = sum(e.weight_bytes for e in self._entries.values() if e.settings.device == device)
        return weights + self._running.get(device, 0)

    def _make_room(self, device: str, needed: int, *, keep: str, adding: bool) -> bool:
        """Evict idle pipelines of ``device``, least recently used first, until ``needed``
        more bytes (and, when ``adding``, one more pipeline) fit; call with the lock held."""
        budget = self.budget(device)
        while True:
            on_device = [k for k, e in self._entries.items() if e.settings.device == device]
            count_ok = not adding or len(on_device) < self._max
            memory_ok = budget is None or self._used(device) + needed <= budget
            if count_ok and memory_ok:
                return True
            idle = [
                k
                for k in on_device
                if k != keep and self._entries[k].users == 0 and self._entries[k].loaded is not None
            ]
            if not idle:
                return False
            self._evict(idle[0])

    def _evict(self, key: str) -> None:
        entry = self._entries.pop(key)
        log.info("evicting %s from %s", entry.settings.pipeline, entry.settings.device)
        self.evictions += 1
        del entry
        release_device_memory()

    def evict_idle(self, device: str, *, keep: str | None = None) -> int:
        """Drop every idle pipeline of ``device`` but ``keep``; returns how many."""
        with self._changed:
            idle = [
                k
                for k, e in self._entries.items()
                if e.settings.device == device and k != keep and e.users == 0 and e.loaded
            ]
            for key in idle:
                self._evict(key)
            self._changed.notify_all()
            return len(idle)

    def discard(self, settings: DiffusersSettings) -> None:
        """Drop a pipeline (e.g. after an out-of-memory error left it in doubt)."""
        with self._changed:
            entry = self._entries.get(settings.cache_key())
            if entry is not None and entry.users == 0 and entry.loaded is not None:
                self._evict(settings.cache_key())

    def clear(self) -> None:
        with self._changed:
            self._entries.clear()
            self._changed.notify_all()
            release_device_memory()


def _too_large(
    settings: DiffusersSettings,
    weights: int,
    reserve: int,
    budget: int,
    geometry: Geometry | None,
) -> str:
    what = f"a {geometry} request" if geometry is not None else "this request"
    return (
        f"{settings.pipeline} needs about {(weights + reserve) / _GIB:.1f} GiB of GPU memory "
        f"for {what} ({weights / _GIB:.1f} GiB of weights and {reserve / _GIB:.1f} GiB of "
        f"working memory), more than {settings.device}'s budget of {budget / _GIB:.1f} GiB; "
        "the credits were refunded. Try a smaller size or fewer frames, or ask the operator "
        "to enable offload or VAE tiling for this model."
    )
