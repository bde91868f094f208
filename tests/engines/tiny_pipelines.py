"""Tiny, randomly initialised diffusers pipelines, saved to a directory for offline tests.

Each ``build_*`` function creates every component of one diffusers pipeline from a config
(no download: the tokenizer is a word-level ``tokenizers`` model made here, the models get
random weights), saves the pipeline with ``save_pretrained(directory)`` and returns the
directory. The result loads back with ``DiffusionPipeline.from_pretrained(directory)`` (or the
concrete class's ``from_pretrained``) under ``HF_HUB_OFFLINE=1`` and runs on CPU in a fraction
of a second at the sizes in ``TINY_SHAPES``. The outputs are noise: these pipelines test the
plumbing (loading, arguments, shapes, callbacks, determinism), not the pictures.

``BUILDERS`` names them: ``wan-t2v``, ``wan-i2v``, ``ltx-t2v``, ``ltx-i2v``, ``cogvideox-t2v``,
``cogvideox-i2v`` and ``t2i`` (CogView3-Plus), plus ``t2i-flux`` (FLUX.1 [schnell]'s layout)
and the other Wan layouts of the catalog (``wan-t2v-a14b``, ``wan-ti2v-5b``, ``wan-i2v-2.1``,
``wan-flf2v``). ``TINY_SHAPES``
says how to run each quickly. Builds are deterministic: every builder seeds torch with
``seed`` before creating modules, and two builds with one seed write identical files.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from diffusers import (
    AutoencoderKL,
    AutoencoderKLCogVideoX,
    AutoencoderKLLTXVideo,
    AutoencoderKLWan,
    CogVideoXDDIMScheduler,
    CogVideoXDPMScheduler,
    CogVideoXImageToVideoPipeline,
    CogVideoXPipeline,
    CogVideoXTransformer3DModel,
    CogView3PlusPipeline,
    CogView3PlusTransformer2DModel,
    DiffusionPipeline,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
    LTXImageToVideoPipeline,
    LTXPipeline,
    LTXVideoTransformer3DModel,
    UniPCMultistepScheduler,
    WanImageToVideoPipeline,
    WanPipeline,
    WanTransformer3DModel,
)
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.normalizers import Lowercase
from tokenizers.pre_tokenizers import Whitespace
from tokenizers.processors import TemplateProcessing
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPVisionConfig,
    CLIPVisionModel,
    PreTrainedTokenizerFast,
    T5Config,
    T5EncoderModel,
    UMT5Config,
    UMT5EncoderModel,
)

try:  # transformers >= 5: the PIL backend, which needs no torchvision
    from transformers import CLIPImageProcessorPil as _ClipImageProcessor
except ImportError:  # pragma: no cover - older transformers
    from transformers import CLIPImageProcessor as _ClipImageProcessor

__all__ = [
    "BUILDERS",
    "TINY_SHAPES",
    "Builder",
    "TinyShape",
    "WanI2VVariant",
    "WanT2VVariant",
    "build_cogvideox_i2v",
    "build_cogvideox_t2v",
    "build_flux_t2i",
    "build_ltx_i2v",
    "build_ltx_t2v",
    "build_text_to_image",
    "build_wan_i2v",
    "build_wan_t2v",
]

# The hidden size of every tiny text encoder; the transformers' text/caption dims follow it.
TEXT_DIM = 32

# Special tokens first, at T5's ids (pad 0, eos 1, unk 2), then a few words for prompts.
_SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")
_PROMPT_WORDS = """
    a an the of in on at with and to from by over under into
    cat dog bird fish horse monkey robot person man woman child car boat tree flower
    sky sea river mountain city street forest beach snow rain sun moon night day
    red green blue yellow white black bright dark small big slow fast
    dance run walk fly swim jump sit look smile
"""
_WORDS = tuple(_PROMPT_WORDS.split())
_VOCAB: dict[str, int] = {token: i for i, token in enumerate((*_SPECIAL_TOKENS, *_WORDS))}
VOCAB_SIZE = 128  # room to spare over len(_VOCAB); the text encoders' embedding size


@dataclass(frozen=True)
class TinyShape:
    """How to run one tiny pipeline quickly: its class and its smallest useful output size.

    ``width`` and ``height`` are the smallest the pipeline accepts (any multiple of
    ``size_multiple`` at or above them works); ``num_frames`` is the smallest count above one
    frame that comes back unchanged (counts of the form ``frame_multiple * k + 1``; one frame
    also works).
    """

    pipeline_class: str
    width: int
    height: int
    num_frames: int  # 1 for the text-to-image pipeline, which takes no ``num_frames``
    num_inference_steps: int = 2
    size_multiple: int = 16
    frame_multiple: int = 4
    takes_image: bool = False  # image-to-video: needs ``image=``
    takes_last_image: bool = False  # also accepts ``last_image=`` (first and last frame)
    takes_guidance_scale_2: bool = False  # two transformers: ``guidance_scale_2=`` for the 2nd
    # The image-to-video class that also loads this text-to-video directory, if there is one.
    image_pipeline_class: str | None = None
    is_video: bool = True  # output in ``.frames`` (else ``.images``) and takes ``num_frames``


def _tokenizer(model_max_length: int) -> PreTrainedTokenizerFast:
    """A lowercase word-level tokenizer that ends every sequence with ``</s>`` like T5."""
    model = Tokenizer(WordLevel(vocab=dict(_VOCAB), unk_token="<unk>"))
    model.normalizer = Lowercase()
    model.pre_tokenizer = Whitespace()
    eos_id = _VOCAB["</s>"]
    model.post_processor = TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", eos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=model,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=model_max_length,
        padding_side="right",
    )


def _text_config(config_class: type[T5Config] | type[UMT5Config]) -> Any:
    """A two-layer, 32-wide T5-family encoder config over the tiny vocabulary."""
    return config_class(
        vocab_size=VOCAB_SIZE,
        d_model=TEXT_DIM,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        pad_token_id=_VOCAB["<pad>"],
        eos_token_id=_VOCAB["</s>"],
    )


def _t5_encoder() -> T5EncoderModel:
    return T5EncoderModel(_text_config(T5Config)).eval()


def _umt5_encoder() -> UMT5EncoderModel:
    return UMT5EncoderModel(_text_config(UMT5Config)).eval()


def _save(pipeline: DiffusionPipeline, directory: Path) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pipeline.save_pretrained(directory)
    return directory


# --- Wan ---------------------------------------------------------------------------------------

WanT2VVariant = Literal["wan2.1", "wan2.2-a14b", "wan2.2-ti2v"]
WanI2VVariant = Literal["wan2.2-a14b", "wan2.1", "flf2v"]

# Wan 2.2 A14B hands the low-noise steps (t < 0.875 * 1000) to ``transformer_2``.
_WAN_BOUNDARY_RATIO = 0.875

# Tiny CLIP vision encoder for the Wan 2.1 image layouts: 4x4 input, patch 1, so 16 + 1 tokens.
_CLIP_IMAGE_SIZE = 4
_CLIP_HIDDEN = 4


def _wan_vae(*, ti2v: bool = False) -> AutoencoderKLWan:
    if ti2v:
        # Wan 2.2 TI2V-5B's layout: 48 latent channels, 2x2 pixel patches before the three
        # downsamples, so 16x in space; 4x in time.
        return AutoencoderKLWan(
            base_dim=3,
            z_dim=48,
            in_channels=12,
            out_channels=12,
            is_residual=True,
            patch_size=2,
            latents_mean=[0.0] * 48,
            latents_std=[1.0] * 48,
            dim_mult=[1, 1, 1, 1],
            num_res_blocks=1,
            scale_factor_spatial=16,
            scale_factor_temporal=4,
            temperal_downsample=[False, True, True],
        )
    # 16 latent channels; 8x in space (three downsamples), 4x in time (two of them).
    return AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )


def _wan_transformer(
    in_channels: int, out_channels: int = 16, **extra: Any
) -> WanTransformer3DModel:
    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=in_channels,
        out_channels=out_channels,
        text_dim=TEXT_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        **extra,
    )


def _wan_scheduler() -> UniPCMultistepScheduler:
    return UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
    )


def build_wan_t2v(directory: Path, *, seed: int = 0, variant: WanT2VVariant = "wan2.1") -> Path:
    """``WanPipeline``, in the layout of ``variant``:

    - ``"wan2.1"`` (default; like Wan2.1-T2V-1.3B/14B): one transformer.
    - ``"wan2.2-a14b"`` (like Wan2.2-T2V-A14B): ``transformer`` for the high-noise steps and
      ``transformer_2`` for the rest (``boundary_ratio`` 0.875); accepts ``guidance_scale_2``.
    - ``"wan2.2-ti2v"`` (like Wan2.2-TI2V-5B): the 48-channel VAE that compresses 16x in space
      and ``expand_timesteps``; the same directory also loads as ``WanImageToVideoPipeline``
      (``image=``; a ``last_image`` is accepted but silently ignored in this layout).

    Height and width must be multiples of 16 (32 for ``wan2.2-ti2v``): others are rounded down
    with a logged warning. ``num_frames`` should be ``4k + 1``: others are rounded down with a
    logged warning. Smallest: 16x16 (32x32) with 1 frame, or 5 frames for a moving picture.
    """
    torch.manual_seed(seed)
    components: dict[str, Any] = {
        "tokenizer": _tokenizer(512),
        "text_encoder": _umt5_encoder(),
        "scheduler": _wan_scheduler(),
        "transformer_2": None,
    }
    if variant == "wan2.1":
        components["vae"] = _wan_vae()
        components["transformer"] = _wan_transformer(in_channels=16)
    elif variant == "wan2.2-a14b":
        components["vae"] = _wan_vae()
        components["transformer"] = _wan_transformer(in_channels=16)
        components["transformer_2"] = _wan_transformer(in_channels=16)
        components["boundary_ratio"] = _WAN_BOUNDARY_RATIO
    elif variant == "wan2.2-ti2v":
        components["vae"] = _wan_vae(ti2v=True)
        components["transformer"] = _wan_transformer(in_channels=48, out_channels=48)
        components["expand_timesteps"] = True
    else:
        raise ValueError(f"unknown Wan text-to-video variant {variant!r}")
    return _save(WanPipeline(**components), directory)


def build_wan_i2v(
    directory: Path, *, seed: int = 0, variant: WanI2VVariant = "wan2.2-a14b"
) -> Path:
    """``WanImageToVideoPipeline``: takes ``image=`` and, depending on ``variant``,
    ``last_image=`` (first and last frame):

    - ``"wan2.2-a14b"`` (default; like Wan2.2-I2V-A14B): no image encoder; two transformers
      (``boundary_ratio`` 0.875, so ``guidance_scale_2`` is accepted) that see the noise, a
      frame mask and the VAE-encoded conditioning frames (16 + 4 + 16 = 36 channels). Takes
      ``image`` alone or with ``last_image``.
    - ``"wan2.1"`` (like Wan2.1-I2V-14B-480P/720P): one transformer plus a CLIP vision
      ``image_encoder`` and ``image_processor``. Takes ``image`` only: with ``last_image`` the
      two image embeddings come out as a batch of two and the transformer raises RuntimeError.
    - ``"flf2v"`` (like Wan2.1-FLF2V-14B-720P): the CLIP encoder plus a positional embedding
      over both images' tokens. Needs ``last_image``: without it the transformer raises
      RuntimeError.

    Sizes as for ``build_wan_t2v``: multiples of 16, ``4k + 1`` frames. Without the ``ftfy``
    package, diffusers 0.42's ``WanImageToVideoPipeline`` raises NameError on any ``prompt``
    (it calls ``ftfy.fix_text`` unguarded; ``WanPipeline`` checks first).
    """
    torch.manual_seed(seed)
    components: dict[str, Any] = {
        "tokenizer": _tokenizer(512),
        "text_encoder": _umt5_encoder(),
        "vae": _wan_vae(),
        "scheduler": _wan_scheduler(),
        "transformer_2": None,
        "image_encoder": None,
        "image_processor": None,
    }
    if variant == "wan2.2-a14b":
        components["transformer"] = _wan_transformer(in_channels=36)
        components["transformer_2"] = _wan_transformer(in_channels=36)
        components["boundary_ratio"] = _WAN_BOUNDARY_RATIO
    elif variant in ("wan2.1", "flf2v"):
        extra: dict[str, Any] = {"image_dim": _CLIP_HIDDEN}
        if variant == "flf2v":
            extra["pos_embed_seq_len"] = 2 * (_CLIP_IMAGE_SIZE * _CLIP_IMAGE_SIZE + 1)
        components["transformer"] = _wan_transformer(in_channels=36, **extra)
        components["image_encoder"] = CLIPVisionModel(
            CLIPVisionConfig(
                hidden_size=_CLIP_HIDDEN,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=16,
                image_size=_CLIP_IMAGE_SIZE,
                patch_size=1,
            )
        ).eval()
        components["image_processor"] = _ClipImageProcessor(
            size={"shortest_edge": _CLIP_IMAGE_SIZE},
            crop_size={"height": _CLIP_IMAGE_SIZE, "width": _CLIP_IMAGE_SIZE},
        )
    else:
        raise ValueError(f"unknown Wan image-to-video variant {variant!r}")
    return _save(WanImageToVideoPipeline(**components), directory)


# --- LTX-Video ---------------------------------------------------------------------------------


def _ltx_components() -> dict[str, Any]:
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=TEXT_DIM,
    )
    # Two of the four blocks scale in space and time: compression 4 in both (the real VAE has
    # patch 4 and three scaling blocks: 32 in space, 8 in time). Timestep-conditioned decoding
    # as in LTX-Video 0.9.1 and later, so ``decode_timestep``/``decode_noise_scale`` matter.
    vae = AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=True,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    return {
        "scheduler": FlowMatchEulerDiscreteScheduler(),
        "vae": vae,
        "text_encoder": _t5_encoder(),
        "tokenizer": _tokenizer(128),
        "transformer": transformer,
    }


def build_ltx_t2v(directory: Path, *, seed: int = 0) -> Path:
    """``LTXPipeline``; the same directory also loads as ``LTXImageToVideoPipeline``.

    The pipeline requires height and width divisible by 32 whatever the VAE; the tiny VAE
    compresses 4x in space and time, so ``num_frames`` should be ``4k + 1`` (the real model
    wants ``8k + 1``); other counts are silently rounded down (8 frames asked, 5 made).
    Smallest: 32x32 with 1 frame, or 5 frames for a moving picture.
    """
    torch.manual_seed(seed)
    return _save(LTXPipeline(**_ltx_components()), directory)


def build_ltx_i2v(directory: Path, *, seed: int = 0) -> Path:
    """``LTXImageToVideoPipeline`` (same components as ``build_ltx_t2v``); takes ``image=``."""
    torch.manual_seed(seed)
    return _save(LTXImageToVideoPipeline(**_ltx_components()), directory)


# --- CogVideoX ---------------------------------------------------------------------------------


def _cogvideox_components(*, image_to_video: bool) -> dict[str, Any]:
    latent_channels = 4
    # CogVideoX-5b's layout: rotary positions (no sin-cos table tied to 226 text tokens), but
    # not the learned positions of CogVideoX-5b-I2V, which would allow one size only.
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2,
        attention_head_dim=16,
        # Image-to-video concatenates the image latents to the noise along channels.
        in_channels=2 * latent_channels if image_to_video else latent_channels,
        out_channels=latent_channels,
        time_embed_dim=2,
        text_embed_dim=TEXT_DIM,
        num_layers=1,
        sample_width=2,
        sample_height=2,
        sample_frames=9,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=226,
        use_rotary_positional_embeddings=True,
    )
    vae = AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=latent_channels,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    return {
        "tokenizer": _tokenizer(226),
        "text_encoder": _t5_encoder(),
        "vae": vae,
        "transformer": transformer,
        "scheduler": CogVideoXDPMScheduler(),
    }


def build_cogvideox_t2v(directory: Path, *, seed: int = 0) -> Path:
    """``CogVideoXPipeline`` (CogVideoX-5b layout: rotary positions, DPM scheduler).

    Height and width must be multiples of 16 (VAE 8 x patch 2), smallest 16x16. ``num_frames``
    should be ``8k + 1`` (9, 17, ...): 1 also works, while other counts change (5 -> 8,
    13 -> 16). The pipeline ignores ``num_videos_per_prompt`` (one video per prompt).
    """
    torch.manual_seed(seed)
    return _save(CogVideoXPipeline(**_cogvideox_components(image_to_video=False)), directory)


def build_cogvideox_i2v(directory: Path, *, seed: int = 0) -> Path:
    """``CogVideoXImageToVideoPipeline``; takes ``image=``.

    Without the learned positions of CogVideoX-5b-I2V, so any multiple-of-16 size works.
    Frames as for ``build_cogvideox_t2v``.
    """
    torch.manual_seed(seed)
    return _save(
        CogVideoXImageToVideoPipeline(**_cogvideox_components(image_to_video=True)), directory
    )


# --- Text to image -----------------------------------------------------------------------------


def build_text_to_image(directory: Path, *, seed: int = 0) -> Path:
    """``CogView3PlusPipeline``: T5 text encoder, ``AutoencoderKL``, classifier-free guidance.

    Chosen over PixArt-Sigma, which has no ``callback_on_step_end`` and bins resolutions
    (renders at a bin and resizes, and rejects a tiny ``sample_size``); it is also one of
    ``AutoPipelineForText2Image``'s. Height and width must be multiples of 8, smallest 8x8; the
    tiny VAE compresses 2x and the patch is 2, with positions for 32 patches a side (128 px).
    See ``build_flux_t2i`` for the layout of the catalog's FLUX.1 [schnell].
    """
    torch.manual_seed(seed)
    transformer = CogView3PlusTransformer2DModel(
        patch_size=2,
        in_channels=4,
        num_layers=1,
        attention_head_dim=4,
        num_attention_heads=2,
        out_channels=4,
        text_embed_dim=TEXT_DIM,
        time_embed_dim=8,
        condition_dim=2,
        pos_embed_max_size=32,
        sample_size=8,
    )
    vae = AutoencoderKL(
        block_out_channels=[8, 8],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        norm_num_groups=2,
        sample_size=16,
    )
    pipeline = CogView3PlusPipeline(
        tokenizer=_tokenizer(224),
        text_encoder=_t5_encoder(),
        vae=vae,
        transformer=transformer,
        scheduler=CogVideoXDDIMScheduler(),
    )
    return _save(pipeline, directory)


def build_flux_t2i(directory: Path, *, seed: int = 0) -> Path:
    """``FluxPipeline`` in FLUX.1 [schnell]'s layout (no guidance embedding, so
    ``guidance_scale`` has no effect; ``negative_prompt`` counts once ``true_cfg_scale > 1``).

    Two text encoders, as in FLUX: a CLIP text model (``tokenizer``, 77 tokens, pooled) and T5
    (``tokenizer_2``, up to 512 tokens). Height and width should be multiples of 16 (VAE 8 x
    2x2 packing; others are rounded down with a logged warning), smallest 16x16.
    """
    torch.manual_seed(seed)
    latent_channels = 4
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=VOCAB_SIZE,
            hidden_size=TEXT_DIM,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            projection_dim=TEXT_DIM,
            # The pooled output is read at the first end-of-sequence token.
            pad_token_id=_VOCAB["<pad>"],
            eos_token_id=_VOCAB["</s>"],
            bos_token_id=_VOCAB["</s>"],
        )
    ).eval()
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=4 * latent_channels,  # latents are packed in 2x2 patches
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=TEXT_DIM,
        pooled_projection_dim=TEXT_DIM,
        axes_dims_rope=(4, 4, 8),
        guidance_embeds=False,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=2,
        sample_size=32,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.0609,
        scaling_factor=1.5035,
    )
    pipeline = FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=_tokenizer(77),
        text_encoder_2=_t5_encoder(),
        tokenizer_2=_tokenizer(512),
        transformer=transformer,
    )
    return _save(pipeline, directory)


# --- Registry ----------------------------------------------------------------------------------


class Builder(Protocol):
    """A ``build_*`` function: usable wherever a ``Callable[[Path], Path]`` is expected."""

    def __call__(self, directory: Path, *, seed: int = 0) -> Path: ...


BUILDERS: dict[str, Builder] = {
    "wan-t2v": build_wan_t2v,
    "wan-i2v": build_wan_i2v,
    "ltx-t2v": build_ltx_t2v,
    "ltx-i2v": build_ltx_i2v,
    "cogvideox-t2v": build_cogvideox_t2v,
    "cogvideox-i2v": build_cogvideox_i2v,
    "t2i": build_text_to_image,
    "t2i-flux": build_flux_t2i,
    # The other Wan layouts.
    "wan-t2v-a14b": functools.partial(build_wan_t2v, variant="wan2.2-a14b"),
    "wan-ti2v-5b": functools.partial(build_wan_t2v, variant="wan2.2-ti2v"),
    "wan-i2v-2.1": functools.partial(build_wan_i2v, variant="wan2.1"),
    "wan-flf2v": functools.partial(build_wan_i2v, variant="flf2v"),
}

TINY_SHAPES: dict[str, TinyShape] = {
    "wan-t2v": TinyShape("WanPipeline", 16, 16, 5),
    "wan-i2v": TinyShape(
        "WanImageToVideoPipeline",
        16,
        16,
        5,
        takes_image=True,
        takes_last_image=True,
        takes_guidance_scale_2=True,
    ),
    "ltx-t2v": TinyShape(
        "LTXPipeline", 32, 32, 5, size_multiple=32, image_pipeline_class="LTXImageToVideoPipeline"
    ),
    "ltx-i2v": TinyShape("LTXImageToVideoPipeline", 32, 32, 5, size_multiple=32, takes_image=True),
    "cogvideox-t2v": TinyShape("CogVideoXPipeline", 16, 16, 9, frame_multiple=8),
    "cogvideox-i2v": TinyShape(
        "CogVideoXImageToVideoPipeline", 16, 16, 9, frame_multiple=8, takes_image=True
    ),
    "t2i": TinyShape(
        "CogView3PlusPipeline", 8, 8, 1, size_multiple=8, frame_multiple=1, is_video=False
    ),
    "t2i-flux": TinyShape("FluxPipeline", 16, 16, 1, frame_multiple=1, is_video=False),
    "wan-t2v-a14b": TinyShape("WanPipeline", 16, 16, 5, takes_guidance_scale_2=True),
    "wan-ti2v-5b": TinyShape(
        "WanPipeline", 32, 32, 5, size_multiple=32, image_pipeline_class="WanImageToVideoPipeline"
    ),
    "wan-i2v-2.1": TinyShape("WanImageToVideoPipeline", 16, 16, 5, takes_image=True),
    "wan-flf2v": TinyShape(
        "WanImageToVideoPipeline", 16, 16, 5, takes_image=True, takes_last_image=True
    ),
}
