"""Loading diffusers pipelines and keeping them warm.

A worker loads each route's pipeline once and keeps it in a small LRU cache bounded by
a count and a device-memory budget; loading a pipeline that does not fit evicts the
least recently used ones first. Everything here runs on the engine's inference thread.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framegate.engines.base import EngineError
from framegate.engines.diffusers.accel import apply_accelerations
from framegate.engines.diffusers.settings import DiffusersSettings, has_weights

log = logging.getLogger(__name__)

_GIB = 1024**3
_WEIGHT_SUFFIXES = {".safetensors", ".bin", ".pt", ".pth"}


@dataclass
class LoadedPipeline:
    pipe: Any
    settings: DiffusersSettings
    # Device memory the pipeline is counted as using while warm.
    memory_bytes: int
    # Names of the __call__ parameters, to pass only what the pipeline takes.
    call_parameters: frozenset[str]
    # Pipelines of other classes sharing these components (image_pipeline), by class.
    variants: dict[str, LoadedPipeline] = field(default_factory=dict)


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
    """Load ``weights_dir`` with the route's class, dtype, placement and accelerations."""
    if not has_weights(weights_dir):
        raise EngineError(
            f"no diffusers weights at {weights_dir} (run `framegate models pull` for this route "
            "or point its weights setting at a save_pretrained directory)",
            code="model_unavailable",
        )
    cls = resolve_pipeline_class(settings.pipeline)
    _quiet_loading()
    pipe = cls.from_pretrained(
        str(weights_dir), torch_dtype=torch_dtype(settings.dtype), local_files_only=True
    )
    if settings.flow_shift is not None:
        _set_flow_shift(pipe, settings.flow_shift)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    if settings.offload == "model":
        pipe.enable_model_cpu_offload(device=settings.device)
    elif settings.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=settings.device)
    else:
        pipe.to(settings.device)
    if settings.vae_tiling and getattr(pipe, "vae", None) is not None:
        pipe.vae.enable_tiling()
    applied = apply_accelerations(
        pipe,
        device_type=settings.device.split(":")[0],
        attention_backend=settings.attention_backend,
        compile=settings.compile,
        compile_mode=settings.compile_mode,
        cache_threshold=settings.cache.threshold if settings.cache else None,
    )
    memory = _memory_bytes(pipe, settings)
    log.info(
        "loaded %s from %s on %s (%s, offload=%s, %.2f GiB%s)",
        settings.pipeline,
        weights_dir,
        settings.device,
        settings.dtype,
        settings.offload,
        memory / _GIB,
        f", {', '.join(applied)}" if applied else "",
    )
    return LoadedPipeline(pipe, settings, memory, _call_parameters(pipe))


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
    """A pipeline of another class over the same (already placed) components."""
    pipe = resolve_pipeline_class(class_name).from_pipe(base.pipe)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    return LoadedPipeline(pipe, base.settings, 0, _call_parameters(pipe))


def _call_parameters(pipe: Any) -> frozenset[str]:
    import inspect

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
    """Device memory a pipeline will take, before loading it."""
    if settings.memory_gb is not None:
        return int(settings.memory_gb * _GIB)
    if settings.offload == "sequential":
        return 0
    sizes = [
        sum(f.stat().st_size for f in component.rglob("*") if f.suffix in _WEIGHT_SUFFIXES)
        for component in weights_dir.iterdir()
        if component.is_dir()
    ]
    if settings.offload == "model":
        return max(sizes, default=0)
    return sum(sizes)


def device_memory_bytes(device: str) -> int | None:
    """Total memory of a CUDA device; None for the CPU (no budget but the count)."""
    import torch

    if not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    index = int(device.split(":")[1]) if ":" in device else torch.cuda.current_device()
    return int(torch.cuda.get_device_properties(index).total_memory)


def release_device_memory() -> None:
    gc.collect()
    # Only a process that loaded a pipeline has torch (and device memory) to release; a
    # server without the diffusers extra closes its engines without torch installed.
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


class PipelineCache:
    """Warm pipelines by cache key, least recently used first out.

    ``budget_bytes`` caps the summed device memory of the warm pipelines on each device
    (None: 90 % of the device's memory for CUDA, no cap on the CPU); ``max_pipelines``
    caps their number in any case.
    """

    def __init__(
        self,
        *,
        max_pipelines: int,
        budget_bytes: int | None = None,
        loader: Callable[[DiffusersSettings, Path], LoadedPipeline] = load_pipeline,
    ) -> None:
        self._max = max(1, max_pipelines)
        self._budget = budget_bytes
        self._loader = loader
        self._entries: OrderedDict[str, LoadedPipeline] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0
        self.evictions = 0

    def warm(self) -> list[DiffusersSettings]:
        """Settings of the warm pipelines, least recently used first."""
        with self._lock:
            return [entry.settings for entry in self._entries.values()]

    def get(
        self, settings: DiffusersSettings, weights_dir: Path, *, variant: str | None = None
    ) -> LoadedPipeline:
        """The warm pipeline for these settings (loading it if needed); with ``variant``,
        that pipeline class built over the same components."""
        with self._lock:
            base = self._get(settings, weights_dir)
            if variant is None or variant == settings.pipeline:
                return base
            derived = base.variants.get(variant)
            if derived is None:
                derived = derive_pipeline(base, variant)
                base.variants[variant] = derived
            return derived

    def _get(self, settings: DiffusersSettings, weights_dir: Path) -> LoadedPipeline:
        key = settings.cache_key()
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            return entry
        # Make room before loading: by count, then by the weights' size on disk (an
        # upper bound when they are stored in a wider dtype than they load in).
        while len(self._entries) >= self._max:
            self._evict_oldest()
        self._make_room(settings, estimate_bytes(settings, weights_dir))
        entry = self._load(settings, weights_dir)
        self._entries[key] = entry
        self._fit(settings.device, keep=key)
        self.loads += 1
        return entry

    def discard(self, settings: DiffusersSettings) -> None:
        """Drop a pipeline (e.g. after an out-of-memory error left it in doubt)."""
        with self._lock:
            if self._entries.pop(settings.cache_key(), None) is not None:
                self.evictions += 1
                release_device_memory()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            release_device_memory()

    def _load(self, settings: DiffusersSettings, weights_dir: Path) -> LoadedPipeline:
        try:
            return self._loader(settings, weights_dir)
        except _out_of_memory_types() as exc:
            # Whatever else is warm may be what is in the way: drop it all, try once more.
            if not self._entries:
                raise
            log.warning("out of memory loading %s; evicting warm pipelines", settings.pipeline)
            del exc
            self._entries.clear()
            self.evictions += 1
            release_device_memory()
            return self._loader(settings, weights_dir)

    def _make_room(self, settings: DiffusersSettings, needed: int) -> None:
        budget = self._budget if self._budget is not None else _default_budget(settings.device)
        if budget is None:
            return
        while self._entries:
            used = sum(
                e.memory_bytes
                for e in self._entries.values()
                if e.settings.device == settings.device
            )
            if used + needed <= budget:
                return
            victims = [k for k, e in self._entries.items() if e.settings.device == settings.device]
            if not victims:
                return
            self._entries.pop(victims[0])
            self.evictions += 1
            release_device_memory()

    def _fit(self, device: str, *, keep: str) -> None:
        budget = self._budget if self._budget is not None else _default_budget(device)
        if budget is None:
            return
        while True:
            used = sum(
                e.memory_bytes for e in self._entries.values() if e.settings.device == device
            )
            if used <= budget:
                return
            victims = [
                k for k, e in self._entries.items() if k != keep and e.settings.device == device
            ]
            if not victims:
                log.warning(
                    "pipeline %s alone exceeds the memory budget (%.1f of %.1f GiB)",
                    self._entries[keep].settings.pipeline,
                    used / _GIB,
                    budget / _GIB,
                )
                return
            self._entries.pop(victims[0])
            self.evictions += 1
            release_device_memory()

    def _evict_oldest(self) -> None:
        self._entries.popitem(last=False)
        self.evictions += 1
        release_device_memory()


def _default_budget(device: str) -> int | None:
    total = device_memory_bytes(device)
    return None if total is None else int(total * 0.9)


def _out_of_memory_types() -> tuple[type[BaseException], ...]:
    import torch

    return (torch.OutOfMemoryError,)
