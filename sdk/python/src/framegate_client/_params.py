"""Request bodies shared by the sync and async resources."""

from __future__ import annotations

from typing import Any

from ._base import drop_none


def video_body(
    model: str,
    prompt: str,
    *,
    duration: int | None = None,
    size: str | None = None,
    resolution: str | None = None,
    aspect_ratio: str | None = None,
    fps: int | None = None,
    input_image: str | None = None,
    negative_prompt: str | None = None,
    seed: int | None = None,
    camera_fixed: bool | None = None,
    webhook_url: str | None = None,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The JSON body of a video generation request (unset fields left out)."""
    return drop_none(
        {
            "model": model,
            "prompt": prompt,
            "duration": duration,
            "size": size,
            "resolution": resolution,
            "aspect_ratio": aspect_ratio,
            "fps": fps,
            "input_image": input_image,
            "negative_prompt": negative_prompt,
            "seed": seed,
            "camera_fixed": camera_fixed,
            "webhook_url": webhook_url,
            "metadata": metadata,
        }
    )
