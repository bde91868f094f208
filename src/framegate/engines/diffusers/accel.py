"""Optional accelerations applied to a loaded pipeline: attention backend, torch.compile
and a diffusers cache hook. The benchmark (benchmarks/engine_gpu.py) uses these same
functions, so what it measures is what the engine runs.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

# Fastest first; "auto" takes the first one whose requirements are met on this machine.
# _native_cudnn is PyTorch's cuDNN SDPA kernel, the fastest built-in one on Hopper.
AUTO_BACKENDS = ("_flash_3", "flash", "_native_cudnn", "_native_flash", "native")


def denoisers(pipe: Any) -> list[Any]:
    """The pipeline's denoising networks (Wan 2.2 A14B has two transformers)."""
    found = []
    for name in ("transformer", "transformer_2", "unet"):
        module = getattr(pipe, name, None)
        if module is not None:
            found.append(module)
    return found


def usable_backends(device_type: str) -> list[str]:
    """The attention backends of AUTO_BACKENDS that can run on this machine."""
    if device_type != "cuda":
        return ["native"]
    from diffusers.models.attention_dispatch import (
        AttentionBackendName,
        _check_attention_backend_requirements,
    )

    usable = []
    for name in AUTO_BACKENDS:
        try:
            _check_attention_backend_requirements(AttentionBackendName(name))
        except (RuntimeError, ValueError, ImportError):
            continue
        usable.append(name)
    return usable


def set_attention_backend(pipe: Any, backend: str, device_type: str) -> str:
    """Switch every denoiser to ``backend`` ('auto': the fastest usable); returns its name."""
    if backend == "auto":
        candidates = usable_backends(device_type)
        backend = candidates[0] if candidates else "native"
    for module in denoisers(pipe):
        module.set_attention_backend(backend)
    return backend


def compile_denoisers(pipe: Any, mode: str | None = None) -> None:
    """torch.compile the repeated transformer blocks (regional compilation: the same
    speed as compiling the whole model, a fraction of the compile time), or the whole
    module where the model does not declare its repeated blocks."""
    options: dict[str, Any] = {"fullgraph": True}
    if mode is not None:
        options["mode"] = mode
    for module in denoisers(pipe):
        if getattr(module, "_repeated_blocks", None):
            module.compile_repeated_blocks(**options)
        else:
            module.compile(**options)


def enable_first_block_cache(pipe: Any, threshold: float) -> None:
    from diffusers import FirstBlockCacheConfig

    for module in denoisers(pipe):
        module.enable_cache(FirstBlockCacheConfig(threshold=threshold))


def apply_accelerations(
    pipe: Any,
    *,
    device_type: str,
    attention_backend: str | None = None,
    compile: bool = False,
    compile_mode: str | None = None,
    cache_threshold: float | None = None,
) -> list[str]:
    """Apply the requested accelerations; returns what was applied, for the log."""
    applied = []
    if attention_backend is not None:
        chosen = set_attention_backend(pipe, attention_backend, device_type)
        applied.append(f"attention={chosen}")
    if cache_threshold is not None:
        enable_first_block_cache(pipe, cache_threshold)
        applied.append(f"first_block_cache={cache_threshold}")
    if compile:
        compile_denoisers(pipe, compile_mode)
        applied.append(f"compile={compile_mode or 'default'}")
    return applied
