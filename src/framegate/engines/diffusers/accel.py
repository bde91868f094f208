"""Optional accelerations applied to a loaded pipeline: attention backend, torch.compile
and a diffusers cache hook. The benchmark (benchmarks/engine_gpu.py) uses these same
functions, so what it measures is what the engine runs.

This module imports nothing of framegate's and torch/diffusers only inside functions, so a
bare GPU machine with torch and diffusers can import it alone.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

log = logging.getLogger(__name__)

# "auto" takes the first usable backend of the list for the device's architecture.
# Hopper: FlashAttention 3 where installed, then PyTorch's cuDNN SDPA kernel (faster than
# FlashAttention 2 there); Ampere/Ada: FlashAttention 2, then PyTorch's own flash kernel;
# Blackwell: cuDNN. "native" (PyTorch's SDPA dispatcher) closes every list.
AUTO_BACKENDS_BY_ARCH: dict[str, tuple[str, ...]] = {
    "hopper": ("_flash_3", "_native_cudnn", "flash", "_native_flash", "native"),
    "blackwell": ("_native_cudnn", "flash", "native"),
    "ampere": ("flash", "_native_flash", "native", "_native_cudnn"),
    "other": ("native",),
}
# Backends that take an attention mask; the others refuse one (diffusers raises "attn_mask
# is not supported"), so a model that passes masks (LTX-Video) can use only these.
MASK_BACKENDS = frozenset(
    {
        "native",
        "_native_cudnn",
        "_native_efficient",
        "_native_math",
        "flex",
        "xformers",
        "flash_varlen",
        "_flash_varlen_3",
        "sage_varlen",
    }
)


def denoisers(pipe: Any) -> list[Any]:
    """The pipeline's denoising networks (Wan 2.2 A14B has two transformers)."""
    found = []
    for name in ("transformer", "transformer_2", "unet"):
        module = getattr(pipe, name, None)
        if module is not None:
            found.append(module)
    return found


def architecture(capability: tuple[int, int] | None) -> str:
    """The AUTO_BACKENDS_BY_ARCH key for a CUDA compute capability (None: not CUDA)."""
    if capability is None:
        return "other"
    major = capability[0]
    if major == 9:
        return "hopper"
    if major >= 10:
        return "blackwell"
    if major == 8:
        return "ampere"
    return "other"


def passes_attention_masks(module: Any) -> bool:
    """Whether the model hands attention masks to its attention (LTX-Video's text mask)."""
    forward = getattr(module, "forward", None)
    if forward is None:
        return False
    return any("attention_mask" in name for name in inspect.signature(forward).parameters)


def _requirements_met(name: str) -> bool:
    from diffusers.models.attention_dispatch import (
        AttentionBackendName,
        _check_attention_backend_requirements,
    )

    try:
        _check_attention_backend_requirements(AttentionBackendName(name))
    except (RuntimeError, ValueError, ImportError):
        return False
    return True


def auto_order(capability: tuple[int, int] | None, *, needs_masks: bool) -> list[str]:
    """Candidate backends for "auto", fastest first, before checking what is installed."""
    order = AUTO_BACKENDS_BY_ARCH[architecture(capability)]
    return [name for name in order if not needs_masks or name in MASK_BACKENDS]


def usable_backends(
    device_type: str, *, device: str | None = None, needs_masks: bool = False
) -> list[str]:
    """The backends "auto" would choose from on this machine, fastest first."""
    if device_type != "cuda":
        return ["native"]
    import torch

    capability = torch.cuda.get_device_capability(device) if torch.cuda.is_available() else None
    return [
        name for name in auto_order(capability, needs_masks=needs_masks) if _requirements_met(name)
    ]


def set_attention_backend(
    pipe: Any, backend: str, device_type: str, *, device: str | None = None
) -> str:
    """Switch the pipeline's denoisers (and only them) to ``backend``; returns its name.

    ``auto`` picks the fastest usable backend for the device's architecture, among those
    that take masks when a denoiser passes them. An explicit backend that refuses masks is
    refused for a model that passes them, and one that cannot run here (its package not
    installed, the wrong GPU) is refused too: ValueError naming the backend and the fix.

    The backend is set on the denoisers' attention processors directly. diffusers'
    ``ModelMixin.set_attention_backend`` also sets its process-wide active backend, which
    every model without a backend of its own follows (another route's LTX, say), and
    putting it back afterwards would race with a request running on another thread.
    """
    from diffusers.models.attention_dispatch import (
        AttentionBackendName,
        _check_attention_backend_requirements,
        _maybe_download_kernel_for_backend,
    )

    modules = denoisers(pipe)
    needs_masks = any(passes_attention_masks(module) for module in modules)
    if backend == "auto":
        candidates = usable_backends(device_type, device=device, needs_masks=needs_masks)
        backend = candidates[0] if candidates else "native"
    elif needs_masks and backend not in MASK_BACKENDS:
        names = ", ".join(type(m).__name__ for m in modules if passes_attention_masks(m))
        raise ValueError(
            f"attention_backend {backend!r} does not take attention masks, which {names} "
            f"passes; use 'auto' or one of {', '.join(sorted(MASK_BACKENDS))}"
        )
    try:
        name = AttentionBackendName(backend.lower())
        _check_attention_backend_requirements(name)
        _maybe_download_kernel_for_backend(name)
    except (ValueError, RuntimeError, ImportError) as exc:
        raise ValueError(
            f"attention_backend {backend!r} cannot run here ({exc}); use 'auto' or 'native'"
        ) from None
    for module in modules:
        for submodule in module.modules():
            processor = getattr(submodule, "processor", None)
            if processor is not None and hasattr(processor, "_attention_backend"):
                processor._attention_backend = name
    return backend


def compile_denoisers(pipe: Any, mode: str | None = None) -> None:
    """torch.compile the repeated transformer blocks (regional compilation: the same
    speed as compiling the whole model, a fraction of the compile time), or the whole
    module where the model does not declare its repeated blocks.

    Never ``fullgraph``: a graph break (the first-block cache's hook is a
    ``torch.compiler.disable``d function) and the recompile limit (a request of yet another
    shape) then fall back to eager code instead of failing the request.
    """
    options: dict[str, Any] = {"fullgraph": False}
    if mode is not None:
        options["mode"] = mode
    for module in denoisers(pipe):
        if getattr(module, "_repeated_blocks", None):
            module.compile_repeated_blocks(**options)
        else:
            module.compile(**options)


def uncompile_denoisers(pipe: Any) -> None:
    """Undo compile_denoisers (``nn.Module.compile`` keeps the compiled call beside the
    module's own, which it falls back to once that is cleared)."""
    for module in denoisers(pipe):
        for submodule in module.modules():
            if getattr(submodule, "_compiled_call_impl", None) is not None:
                submodule._compiled_call_impl = None


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
    device: str | None = None,
) -> list[str]:
    """Apply the requested accelerations; returns what was applied, for the log."""
    applied = []
    if attention_backend is not None:
        chosen = set_attention_backend(pipe, attention_backend, device_type, device=device)
        applied.append(f"attention={chosen}")
    if cache_threshold is not None:
        enable_first_block_cache(pipe, cache_threshold)
        applied.append(f"first_block_cache={cache_threshold}")
    if compile:
        compile_denoisers(pipe, compile_mode)
        applied.append(f"compile={compile_mode or 'default'}")
    return applied
