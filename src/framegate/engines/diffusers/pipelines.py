"""Loading diffusers pipelines and keeping them warm.

A worker loads each route's pipeline once and keeps it in a small LRU cache bounded, per
device, by a count and a memory budget. The budget counts each warm pipeline's weights and
each running request's working memory (activations and the VAE decode: its reserve, see
``PipelineCache.reserve_bytes``); a request that cannot fit evicts the least recently used
idle pipelines of its device first, and one that cannot fit even alone is refused before it
runs. Pipelines load outside the cache's lock, so a load on one GPU never stalls another;
a pipeline in use is never evicted. Everything here runs on the engine's inference threads.
"""

from __future__ import annotations

import gc
import inspect
import logging
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framegate.engines.base import EngineError, TaskCancelledError
from framegate.engines.diffusers.accel import apply_accelerations, uncompile_denoisers
from framegate.engines.diffusers.settings import DiffusersSettings, has_weights

log = logging.getLogger(__name__)

_GIB = 1024**3
_WEIGHT_SUFFIXES = {".safetensors", ".bin", ".pt", ".pth"}
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
class SharedComponents:
    """What a warm pipeline and the variants built over its components share."""

    # One request at a time on these components: a pipeline keeps per-call state on itself
    # (guidance scale, the scheduler's step index, the cache hook's residuals).
    lock: threading.Lock = field(default_factory=threading.Lock)
    # The pipeline whose CPU-offload hooks are on the components now (None: no offload).
    armed: Any = None


@dataclass
class LoadedPipeline:
    pipe: Any
    settings: DiffusersSettings
    # Device memory the pipeline is counted as using while warm.
    memory_bytes: int
    # Names of the __call__ parameters, to pass only what the pipeline takes.
    call_parameters: frozenset[str]
    shared: SharedComponents = field(default_factory=SharedComponents)
    # Pipelines of other classes sharing these components (image_pipeline), by class.
    variants: dict[str, LoadedPipeline] = field(default_factory=dict)

    def arm_offload(self) -> None:
        """Put this pipeline's offload hooks on the shared components if another pipeline
        over them (base or variant) was the last to run; call with ``shared.lock`` held."""
        offload = self.settings.offload
        if offload == "none" or self.shared.armed is self.pipe:
            return
        if offload == "model":
            self.pipe.enable_model_cpu_offload(device=self.settings.device)
        else:
            self.pipe.enable_sequential_cpu_offload(device=self.settings.device)
        self.shared.armed = self.pipe


def resolve_pipeline_class(name: str) -> Any:
    import diffusers

    cls = getattr(diffusers, name, None)
    if cls is None or not isinstance(cls, type) or not issubclass(cls, diffusers.DiffusionPipeline):
        raise EngineError(
            f"diffusers has no pipeline class {name!r} (diffusers {diffusers.__version__})",
            code="model_unavailable",
        )
    return cls


def torch_dtype(name: str) -> Any:
    import torch

    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[name]


def load_pipeline(settings: DiffusersSettings, weights_dir: Path) -> LoadedPipeline:
    """Load ``weights_dir`` with the route's class, dtypes, placement and accelerations."""
    if not has_weights(weights_dir):
        raise EngineError(
            f"no diffusers weights at {weights_dir} (run `framegate models pull` for this route "
            "or point its weights setting at a save_pretrained directory)",
            code="model_unavailable",
        )
    cls = resolve_pipeline_class(settings.pipeline)
    _quiet_loading()
    dtypes = {name: torch_dtype(dtype) for name, dtype in settings.dtype_map().items()}
    pipe = cls.from_pretrained(str(weights_dir), dtype=dtypes, local_files_only=True)
    if settings.flow_shift is not None:
        _set_flow_shift(pipe, settings.flow_shift)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    shared = SharedComponents()
    if settings.offload == "model":
        pipe.enable_model_cpu_offload(device=settings.device)
        shared.armed = pipe
    elif settings.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=settings.device)
        shared.armed = pipe
    else:
        pipe.to(settings.device)
    if settings.vae_tiling and getattr(pipe, "vae", None) is not None:
        pipe.vae.enable_tiling()
    try:
        applied = apply_accelerations(
            pipe,
            device_type=settings.device_type,
            device=settings.device,
            attention_backend=settings.attention_backend,
            compile=settings.compile,
            compile_mode=settings.compile_mode,
            cache_threshold=settings.cache.threshold if settings.cache else None,
        )
    except ValueError as exc:
        raise EngineError(f"{settings.pipeline}: {exc}", code="invalid_settings") from None
    if settings.compile:
        applied.append(warm_up(pipe, settings))
    memory = _memory_bytes(pipe, settings)
    log.info(
        "loaded %s from %s on %s (%s, offload=%s, %.2f GiB%s)",
        settings.pipeline,
        weights_dir,
        settings.device,
        ", ".join(f"{k}={v}" for k, v in settings.dtype_map().items()),
        settings.offload,
        memory / _GIB,
        f", {', '.join(applied)}" if applied else "",
    )
    return LoadedPipeline(pipe, settings, memory, _call_parameters(pipe), shared)


def warm_up(pipe: Any, settings: DiffusersSettings) -> str:
    """Run the compiled pipeline at the route's warm-up geometries (two steps each, no
    decode) so that compilation happens here and not in a user's request. Should anything
    fail, compilation is undone and the pipeline serves uncompiled."""
    import torch

    if not settings.warmup:
        return "warmup=none (the first request of each shape compiles)"
    parameters = _call_parameters(pipe)
    try:
        for shape in settings.warmup:
            arguments: dict[str, Any] = {
                "prompt": "warm-up",
                "width": shape.width,
                "height": shape.height,
                "num_frames": shape.num_frames,
                "num_inference_steps": 2,
                "guidance_scale": settings.guidance_scale,
                "guidance_scale_2": settings.guidance_scale_2,
                "max_sequence_length": settings.max_sequence_length,
                "output_type": "latent",
                **settings.call_args,
            }
            if "image" in parameters:
                # An image-to-video pipeline: a blank first frame of the warm-up size.
                from PIL import Image

                arguments["image"] = Image.new("RGB", (shape.width, shape.height))
            arguments = {k: v for k, v in arguments.items() if k in parameters and v is not None}
            with torch.inference_mode():
                pipe(**arguments)
    except Exception as exc:
        log.warning(
            "%s: warm-up of the compiled model failed (%s: %s); serving it uncompiled",
            settings.pipeline,
            type(exc).__name__,
            exc,
        )
        uncompile_denoisers(pipe)
        with _suppressed():
            pipe.maybe_free_model_hooks()
        release_device_memory()
        return "compile=off (warm-up failed)"
    return f"warmup={len(settings.warmup)} shapes"


@contextmanager
def _suppressed() -> Iterator[None]:
    try:
        yield
    except Exception:  # cleanup after a failure must not hide the failure
        log.debug("cleanup failed", exc_info=True)


def _quiet_loading() -> None:
    """No per-component progress bars in a server's log."""
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()
    try:
        from transformers.utils import logging as transformers_logging
    except ImportError:  # pipelines without transformers components
        return
    transformers_logging.disable_progress_bar()


def derive_pipeline(base: LoadedPipeline, class_name: str) -> LoadedPipeline:
    """A pipeline of another class over the same, already placed components.

    Built with the class's constructor rather than ``from_pipe``, which ends with
    ``.to(dtype=...)`` and so would cast the shared components (the warm transformer
    included) to one dtype in place.
    """
    cls = resolve_pipeline_class(class_name)
    components = base.pipe.components
    config = base.pipe.config
    arguments: dict[str, Any] = {}
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if name in components:
            arguments[name] = components[name]
        elif name in config:
            arguments[name] = config[name]
        elif parameter.default is inspect.Parameter.empty:
            raise EngineError(
                f"{class_name} needs a {name!r} component that {base.settings.pipeline} has "
                "not loaded; fix the route's image_pipeline setting",
                code="invalid_settings",
            )
    pipe = cls(**arguments)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    return LoadedPipeline(
        pipe, base.settings, base.memory_bytes, _call_parameters(pipe), base.shared
    )


def _call_parameters(pipe: Any) -> frozenset[str]:
    return frozenset(inspect.signature(pipe.__call__).parameters)


def _set_flow_shift(pipe: Any, shift: float) -> None:
    """Rebuild the scheduler with the route's flow shift (UniPC: flow_shift; FlowMatch: shift)."""
    config = dict(pipe.scheduler.config)
    if "flow_shift" in config:
        config["flow_shift"] = shift
    elif "shift" in config:
        config["shift"] = shift
    else:
        raise EngineError(
            f"flow_shift is set but the scheduler {type(pipe.scheduler).__name__} has no shift",
            code="model_unavailable",
        )
    pipe.scheduler = type(pipe.scheduler).from_config(config)


def _memory_bytes(pipe: Any, settings: DiffusersSettings) -> int:
    """What the warm pipeline holds on its device: declared, or counted from parameters."""
    if settings.memory_gb is not None:
        return int(settings.memory_gb * _GIB)
    sizes = []
    for component in pipe.components.values():
        parameters = getattr(component, "parameters", None)
        if parameters is None:
            continue
        sizes.append(sum(p.numel() * p.element_size() for p in parameters()))
    if settings.offload == "sequential":
        return 0
    if settings.offload == "model":
        # One component at a time sits on the device.
        return max(sizes, default=0)
    return sum(sizes)


def estimate_bytes(settings: DiffusersSettings, weights_dir: Path) -> int:
    """Device memory a pipeline's weights will take, before loading it.

    Counted from the safetensors headers (no tensor is read): each floating-point tensor at
    the size of the dtype its component loads in, whatever dtype it is stored in (hub
    snapshots often store float32 weights that load as bfloat16); other files by their
    size on disk.
    """
    if settings.memory_gb is not None:
        return int(settings.memory_gb * _GIB)
    if settings.offload == "sequential" or not weights_dir.is_dir():
        return 0
    dtypes = settings.dtype_map()
    sizes = [
        _component_bytes(component, _DTYPE_BYTES[dtypes.get(component.name, dtypes["default"])])
        for component in weights_dir.iterdir()
        if component.is_dir()
    ]
    if settings.offload == "model":
        return max(sizes, default=0)
    return sum(sizes)


_DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}
# safetensors dtype names: bytes per element, and whether loading casts them.
_STORED_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1}


def _component_bytes(directory: Path, float_bytes: int) -> int:
    from safetensors import safe_open

    total = 0
    for path in directory.rglob("*"):
        if path.suffix not in _WEIGHT_SUFFIXES or not path.is_file():
            continue
        if path.suffix != ".safetensors":
            total += path.stat().st_size
            continue
        try:
            with safe_open(str(path), framework="np") as weights:
                for name in weights.keys():  # noqa: SIM118 - safe_open is not a mapping
                    tensor = weights.get_slice(name)
                    count = 1
                    for side in tensor.get_shape():
                        count *= side
                    stored = tensor.get_dtype()
                    total += count * (float_bytes if stored in _STORED_BYTES else 1)
        except Exception:  # a damaged file: its size, and the load will say what is wrong
            total += path.stat().st_size
    return total


def device_memory_bytes(device: str) -> int | None:
    """Total memory of a CUDA device; None for the CPU (no budget but the count)."""
    if not device.startswith("cuda"):
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    index = int(device.split(":")[1]) if ":" in device else 0
    return int(torch.cuda.get_device_properties(index).total_memory)


def release_device_memory() -> None:
    gc.collect()
    # Only a process that loaded a pipeline has torch (and device memory) to release; a
    # server without the diffusers extra closes its engines without torch installed.
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def out_of_memory_types() -> tuple[type[BaseException], ...]:
    import torch

    return (torch.OutOfMemoryError,)


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
        self,
        settings: DiffusersSettings,
        weights_dir: Path,
        *,
        variant: str | None = None,
        geometry: Geometry | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> LoadedPipeline:
        """The warm pipeline (loaded if needed), not held: for inspection and warming."""
        with self.lease(
            settings, weights_dir, variant=variant, geometry=geometry, stop=stop
        ) as loaded:
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


def out_of_memory_error() -> EngineError:
    return EngineError(
        "The GPU ran out of memory for this request; the credits were refunded. "
        "Try a smaller size or fewer frames, or ask the operator to enable offload "
        "or VAE tiling for this model.",
        code="gpu_out_of_memory",
    )
