"""Seeded starting noise: drawn on the CPU, so one seed gives one video on every machine.

A seed's noise drawn on a GPU differs from the same seed's on the CPU (and between GPU
generations), and a CPU generator cannot be handed to the pipeline on a GPU: some pipelines
draw with ``torch.randn(..., generator=generator, device=device)`` (LTX image-to-video with
timestep conditioning), which refuses a generator of another device. So the engine draws the
initial latents here with a CPU generator, as the pipeline would have drawn them itself
(same shape and order, in the dtype it keeps them in), passes them in as ``latents``, and
gives the pipeline a generator on its own device for whatever else it draws.

Pipelines not listed here draw their own latents from the device generator: reproducible
on the same kind of device, not across kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["initial_latents", "size_multiple"]


def size_multiple(pipe: Any) -> int | None:
    """The multiple a Wan pipeline needs its width and height in (VAE stride x transformer
    patch: 16, or 32 for Wan 2.2 TI2V 5B), or None where no such rule is known here.

    WanPipeline silently rounds other sizes down (a smaller video than asked for); the
    engine refuses them instead."""
    if type(pipe).__name__ not in ("WanPipeline", "WanImageToVideoPipeline"):
        return None
    transformer = pipe.transformer if pipe.transformer is not None else pipe.transformer_2
    patch = transformer.config.patch_size
    return int(pipe.vae_scale_factor_spatial * max(patch[1], patch[2]))


def initial_latents(
    pipe: Any, *, width: int, height: int, num_frames: int, batch: int, seed: int
) -> Any | None:
    """The starting latents ``pipe`` would draw for this request from a CPU generator
    seeded with ``seed``, or None where this module does not know the pipeline's layout."""
    draw = _DRAWERS.get(type(pipe).__name__)
    if draw is None:
        return None
    import torch

    generator = torch.Generator("cpu").manual_seed(seed)
    return draw(pipe, generator, width, height, num_frames, batch)


def _randn(shape: tuple[int, ...], generator: Any) -> Any:
    import torch

    return torch.randn(shape, generator=generator, dtype=torch.float32)


def _wan_shape(
    pipe: Any, channels: int, width: int, height: int, frames: int, batch: int
) -> tuple[int, ...]:
    return (
        batch,
        channels,
        (frames - 1) // pipe.vae_scale_factor_temporal + 1,
        height // pipe.vae_scale_factor_spatial,
        width // pipe.vae_scale_factor_spatial,
    )


def _wan_t2v(pipe: Any, generator: Any, width: int, height: int, frames: int, batch: int) -> Any:
    # WanPipeline: the latent channels are the (first present) transformer's input channels.
    transformer = pipe.transformer if pipe.transformer is not None else pipe.transformer_2
    channels = transformer.config.in_channels
    return _randn(_wan_shape(pipe, channels, width, height, frames, batch), generator)


def _wan_i2v(pipe: Any, generator: Any, width: int, height: int, frames: int, batch: int) -> Any:
    # WanImageToVideoPipeline: the VAE's latent channels (the transformer also takes the
    # image condition's).
    channels = pipe.vae.config.z_dim
    return _randn(_wan_shape(pipe, channels, width, height, frames, batch), generator)


def _ltx_t2v(pipe: Any, generator: Any, width: int, height: int, frames: int, batch: int) -> Any:
    # LTXPipeline draws (batch, channels, frames, height, width), then packs it into tokens.
    shape = (
        batch,
        pipe.transformer.config.in_channels,
        (frames - 1) // pipe.vae_temporal_compression_ratio + 1,
        height // pipe.vae_spatial_compression_ratio,
        width // pipe.vae_spatial_compression_ratio,
    )
    return pipe._pack_latents(
        _randn(shape, generator),
        pipe.transformer_spatial_patch_size,
        pipe.transformer_temporal_patch_size,
    )


def _cogvideox_t2v(
    pipe: Any, generator: Any, width: int, height: int, frames: int, batch: int
) -> Any | None:
    if pipe.transformer.config.patch_size_t is not None:
        # CogVideoX 1.5 pads the latent frames inside its call; it draws its own.
        return None
    shape = (
        batch,
        (frames - 1) // pipe.vae_scale_factor_temporal + 1,
        pipe.transformer.config.in_channels,
        height // pipe.vae_scale_factor_spatial,
        width // pipe.vae_scale_factor_spatial,
    )
    # CogVideoX draws in the prompt embeddings' dtype and keeps given latents' dtype, so
    # they must come in the text encoder's (a float32 draw cast to bfloat16 is the same
    # draw the pipeline makes in bfloat16).
    encoder = pipe.text_encoder if pipe.text_encoder is not None else pipe.transformer
    return _randn(shape, generator).to(encoder.dtype)


_DRAWERS: dict[str, Callable[[Any, Any, int, int, int, int], Any | None]] = {
    "WanPipeline": _wan_t2v,
    "WanImageToVideoPipeline": _wan_i2v,
    "LTXPipeline": _ltx_t2v,
    "CogVideoXPipeline": _cogvideox_t2v,
}
