"""Routes every installation has, before the operator's catalog file is applied."""

from __future__ import annotations

from typing import Any

from framegate.catalog.schemas import Capabilities, ModelRoute, Pricing, Speed
from framegate.engines.vendors import vendor_routes

PREVIEW_NOTE = (
    "Built-in CPU preview/test engine: renders deterministic animated clips from the prompt "
    "and seed without any model weights. It is not a generative model; use it to develop "
    "and test integrations."
)

BUILTIN_ROUTES: list[ModelRoute] = [
    ModelRoute(
        id="preview",
        aliases=["preview-video"],
        name="Preview (CPU test engine)",
        description=PREVIEW_NOTE,
        kind="video",
        engine="preview",
        capabilities=Capabilities(text_to_video=True, image_to_video=True),
        pricing=Pricing(unit="second", credits={"480p": 1, "720p": 2, "1080p": 4}),
        speed=Speed(base_seconds=1.0, seconds_per_megapixel_frame=0.02),
    ),
    ModelRoute(
        id="preview-image",
        name="Preview image (CPU test engine)",
        description=PREVIEW_NOTE,
        kind="image",
        engine="preview",
        capabilities=Capabilities(
            text_to_image=True, default_size="1024x1024", max_side=2048, max_pixels=2048 * 2048
        ),
        pricing=Pricing(unit="image", credits={"480p": 1, "720p": 1, "1080p": 2}),
        speed=Speed(base_seconds=1.0, seconds_per_megapixel_frame=0.2),
    ),
]


# Open-weight models served by the diffusers engine. Each is available once its weights
# are on the machine (`framegate models pull ROUTE`) and its device is present; an
# operator's catalog file can override any of them (weights path, device, offload...).
WAN_480P = ["832x480", "480x832"]
WAN_720P = ["1280x720", "720x1280"]
# The LTX-Video repository also holds every release's single-file checkpoint.
LTX_DIFFUSERS_FILES = [
    "model_index.json",
    "scheduler/*",
    "text_encoder/*",
    "tokenizer/*",
    "transformer/*",
    "vae/*",
]


def _local(
    route_id: str,
    name: str,
    settings: dict[str, Any],
    capabilities: Capabilities,
    credits: dict[str, int],
    seconds_per_megapixel_frame: float,
    *,
    kind: str = "video",
) -> ModelRoute:
    return ModelRoute.model_validate(
        {
            "id": route_id,
            "name": name,
            "description": f"{name}, open weights, on this installation's GPUs.",
            "kind": kind,
            "engine": "diffusers",
            "settings": settings,
            "capabilities": capabilities,
            "pricing": {"unit": "second" if kind == "video" else "image", "credits": credits},
            "speed": {
                "base_seconds": 5.0,
                "seconds_per_megapixel_frame": seconds_per_megapixel_frame,
            },
        }
    )


def _wan(
    sizes: list[str],
    *,
    t2v: bool = True,
    i2v: bool = False,
    flf: bool = False,
    flf_only: bool = False,
    fps: int = 16,
    max_frames: int = 81,
    multiple: int = 16,
) -> Capabilities:
    return Capabilities(
        text_to_video=t2v,
        image_to_video=i2v,
        first_last_frame=flf or flf_only,
        last_image_required=flf_only,
        min_duration=1,
        max_duration=(max_frames - 1) // fps,
        default_duration=(max_frames - 1) // fps,
        min_fps=fps,
        max_fps=fps,
        default_fps=fps,
        frame_step=4,
        max_frames=max_frames,
        sizes=sizes,
        size_multiple=multiple,
        default_size=sizes[0],
    )


def _cogvideox(*, t2v: bool = False, i2v: bool = False) -> Capabilities:
    """CogVideoX 1.0: 49 frames at 8 fps, 720x480 only."""
    return Capabilities(
        text_to_video=t2v,
        image_to_video=i2v,
        min_duration=1,
        max_duration=6,
        default_duration=6,
        min_fps=8,
        max_fps=8,
        default_fps=8,
        frame_step=8,
        max_frames=49,
        sizes=["720x480"],
        size_multiple=16,
        default_size="720x480",
    )


LOCAL_ROUTES: list[ModelRoute] = [
    _local(
        "wan-2.1-t2v-1.3b",
        "Wan 2.1 T2V 1.3B",
        {
            "family": "wan",
            "pipeline": "WanPipeline",
            "weights": "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
            "flow_shift": 3.0,
            "guidance_scale": 5.0,
        },
        _wan(WAN_480P),
        {"480p": 2},
        1.5,
    ),
    _local(
        "wan-2.1-t2v-14b",
        "Wan 2.1 T2V 14B",
        {
            "family": "wan",
            "pipeline": "WanPipeline",
            "weights": "Wan-AI/Wan2.1-T2V-14B-Diffusers",
            "flow_shift": 5.0,
            "guidance_scale": 5.0,
        },
        _wan(WAN_720P + WAN_480P),
        {"480p": 6, "720p": 12},
        4.0,
    ),
    _local(
        "wan-2.1-i2v-14b-480p",
        "Wan 2.1 I2V 14B 480p",
        {
            "family": "wan",
            "pipeline": "WanImageToVideoPipeline",
            "weights": "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
            "flow_shift": 3.0,
            "guidance_scale": 5.0,
        },
        _wan(WAN_480P, t2v=False, i2v=True),
        {"480p": 6},
        4.0,
    ),
    _local(
        "wan-2.1-i2v-14b-720p",
        "Wan 2.1 I2V 14B 720p",
        {
            "family": "wan",
            "pipeline": "WanImageToVideoPipeline",
            "weights": "Wan-AI/Wan2.1-I2V-14B-720P-Diffusers",
            "flow_shift": 5.0,
            "guidance_scale": 5.0,
        },
        _wan(WAN_720P, t2v=False, i2v=True),
        {"720p": 12},
        4.0,
    ),
    _local(
        "wan-2.1-flf2v-14b-720p",
        "Wan 2.1 first-last-frame 14B 720p",
        {
            "family": "wan",
            "pipeline": "WanImageToVideoPipeline",
            "weights": "Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers",
            "flow_shift": 16.0,
            "guidance_scale": 5.5,
        },
        _wan(WAN_720P, t2v=False, i2v=True, flf_only=True),
        {"720p": 12},
        4.0,
    ),
    _local(
        "wan-2.2-ti2v-5b",
        "Wan 2.2 TI2V 5B",
        {
            "family": "wan",
            "pipeline": "WanPipeline",
            "image_pipeline": "WanImageToVideoPipeline",
            "weights": "Wan-AI/Wan2.2-TI2V-5B-Diffusers",
            "flow_shift": 5.0,
            "guidance_scale": 5.0,
        },
        _wan(["1280x704", "704x1280"], i2v=True, fps=24, max_frames=121, multiple=32),
        {"720p": 4},
        1.0,
    ),
    _local(
        "wan-2.2-t2v-a14b",
        "Wan 2.2 T2V A14B",
        {
            "family": "wan",
            "pipeline": "WanPipeline",
            "weights": "Wan-AI/Wan2.2-T2V-A14B-Diffusers",
            "guidance_scale": 4.0,
            "guidance_scale_2": 3.0,
        },
        _wan(WAN_720P + WAN_480P),
        {"480p": 8, "720p": 16},
        4.5,
    ),
    _local(
        "wan-2.2-i2v-a14b",
        "Wan 2.2 I2V A14B",
        {
            "family": "wan",
            "pipeline": "WanImageToVideoPipeline",
            "weights": "Wan-AI/Wan2.2-I2V-A14B-Diffusers",
            "guidance_scale": 3.5,
            "guidance_scale_2": 3.5,
        },
        _wan(WAN_720P + WAN_480P, t2v=False, i2v=True, flf=True),
        {"480p": 8, "720p": 16},
        4.5,
    ),
    _local(
        "ltx-video",
        "LTX-Video",
        {
            "family": "ltx",
            "pipeline": "LTXPipeline",
            "image_pipeline": "LTXImageToVideoPipeline",
            "weights": "Lightricks/LTX-Video",
            "steps": 50,
            "guidance_scale": 3.0,
            "call_args": {"decode_timestep": 0.03, "decode_noise_scale": 0.025},
        },
        Capabilities(
            text_to_video=True,
            image_to_video=True,
            min_duration=1,
            max_duration=10,
            default_duration=5,
            min_fps=8,
            max_fps=30,
            default_fps=24,
            frame_step=8,
            max_frames=257,
            size_multiple=32,
            min_side=256,
            max_side=1280,
            max_pixels=1280 * 704,
            default_size="704x480",
        ),
        {"480p": 1, "720p": 2},
        0.15,
    ),
    _local(
        "cogvideox-5b",
        "CogVideoX 5B",
        {
            "family": "cogvideox",
            "pipeline": "CogVideoXPipeline",
            "weights": "THUDM/CogVideoX-5b",
            "guidance_scale": 6.0,
            "call_args": {"use_dynamic_cfg": True},
        },
        _cogvideox(t2v=True),
        {"480p": 4},
        12.0,
    ),
    _local(
        "cogvideox-5b-i2v",
        "CogVideoX 5B I2V",
        {
            "family": "cogvideox",
            "pipeline": "CogVideoXImageToVideoPipeline",
            "weights": "THUDM/CogVideoX-5b-I2V",
            "guidance_scale": 6.0,
            "call_args": {"use_dynamic_cfg": True},
        },
        _cogvideox(i2v=True),
        {"480p": 4},
        12.0,
    ),
    _local(
        "flux-schnell",
        "FLUX.1 [schnell]",
        {
            "family": "image",
            "pipeline": "FluxPipeline",
            "weights": "black-forest-labs/FLUX.1-schnell",
            "steps": 4,
            "guidance_scale": 0.0,
            "max_sequence_length": 256,
        },
        Capabilities(
            text_to_image=True,
            size_multiple=16,
            min_side=256,
            max_side=2048,
            max_pixels=2048 * 2048,
            default_size="1024x1024",
        ),
        {"480p": 1, "720p": 1, "1080p": 2},
        1.0,
        kind="image",
    ),
]

BUILTIN_ROUTES.extend(LOCAL_ROUTES)

# Upstream vendors: available once the operator sets the vendor's key.
BUILTIN_ROUTES.extend(ModelRoute.model_validate(route) for route in vendor_routes())
