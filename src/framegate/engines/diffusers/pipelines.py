"""Loading a route's diffusers pipeline: class, per-component dtypes, placement, offload,
accelerations and the compiled warm-up; image variants built over its components; what
its weights take on the device. The cache that keeps pipelines warm is cache.py.
Everything here runs on the engine's inference threads.
"""

from __future__ import annotations

import gc
import inspect
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framegate.engines.base import EngineError
from framegate.engines.diffusers.accel import apply_accelerations, uncompile_denoisers
from framegate.engines.diffusers.settings import DiffusersSettings, has_weights

log = logging.getLogger(__name__)

_GIB = 1024**3
_WEIGHT_SUFFIXES = {".safetensors", ".bin", ".pt", ".pth"}


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


def out_of_memory_error() -> EngineError:
    return EngineError(
        "The GPU ran out of memory for this request; the credits were refunded. "
        "Try a smaller size or fewer frames, or ask the operator to enable offload "
        "or VAE tiling for this model.",
        code="gpu_out_of_memory",
    )
