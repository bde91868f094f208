"""Routes every installation has, before the operator's catalog file is applied."""

from __future__ import annotations

from framegate.catalog.schemas import Capabilities, ModelRoute, Pricing, Speed

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
