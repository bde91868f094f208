"""What several vendor engines share: input images as vendors take them (fitted to the
frame, encoded, as data URIs under a cap), size tables, and the input-name maps of the
hosted-model platforms.

Input images reach an engine already reduced to the output's size when the task was
submitted (``kit.images.intake_image``); these helpers only frame and encode them.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable
from typing import TypeVar

from PIL import Image, ImageOps
from pydantic import BaseModel, ConfigDict

from framegate.engines.vendors.base import VendorShape, refuse_inputs

Resolution = TypeVar("Resolution", bound=str)
AspectRatio = TypeVar("AspectRatio", bound=str)

# Pillow's own default JPEG quality.
DEFAULT_JPEG_QUALITY = 75
_MIME = {"PNG": "image/png", "JPEG": "image/jpeg"}


def encode_image(image: Image.Image, format: str = "PNG", *, quality: int | None = None) -> bytes:
    """``image`` as RGB PNG or JPEG bytes."""
    buffer = io.BytesIO()
    options = {} if quality is None else {"quality": quality}
    (image if image.mode == "RGB" else image.convert("RGB")).save(buffer, format=format, **options)
    return buffer.getvalue()


def as_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def image_data_uri(image: Image.Image, format: str = "PNG", *, quality: int | None = None) -> str:
    return f"data:{_MIME[format]};base64,{as_base64(encode_image(image, format, quality=quality))}"


def fit_image(image: Image.Image, width: int, height: int) -> Image.Image:
    """``image`` centre-cropped to the aspect ratio of ``width x height`` and resized to it."""
    return ImageOps.fit(image.convert("RGB"), (width, height), method=Image.Resampling.LANCZOS)


def capped_data_uri(
    image: Image.Image,
    max_chars: int,
    *,
    jpeg_qualities: tuple[int, ...] = (DEFAULT_JPEG_QUALITY,),
    shrink: bool = False,
) -> str:
    """A data URI of at most ``max_chars``: lossless PNG when it fits, else JPEG at each of
    ``jpeg_qualities`` in turn; with ``shrink``, then ever smaller JPEGs (down to 64 px).
    Without ``shrink`` the last JPEG is returned even when it is over the cap."""
    uri = image_data_uri(image, "PNG")
    if len(uri) <= max_chars:
        return uri
    current = image.convert("RGB")
    for quality in jpeg_qualities:
        uri = image_data_uri(current, "JPEG", quality=quality)
        if len(uri) <= max_chars:
            return uri
    last = jpeg_qualities[-1]
    while shrink and min(current.size) > 64:
        width, height = current.size
        current = current.resize((max(1, width * 3 // 4), max(1, height * 3 // 4)))
        uri = image_data_uri(current, "JPEG", quality=last)
        if len(uri) <= max_chars:
            break
    return uri


def data_uri_chars(max_bytes: int, format: str = "JPEG") -> int:
    """The length of the data URI of ``max_bytes`` of an image in ``format``."""
    return len(f"data:{_MIME[format]};base64,") + 4 * -(-max_bytes // 3)


# -- sizes ---------------------------------------------------------------------------------


def frame_size(resolution: str, aspect_ratio: str) -> tuple[int, int]:
    """The frame of a resolution tier (``"720p"``: the short side) at an aspect ratio."""
    a, b = (int(part) for part in aspect_ratio.split(":"))
    short = int(resolution.removesuffix("p"))
    long = short * max(a, b) // min(a, b)
    return (long, short) if a >= b else (short, long)


def size_table(
    resolutions: Iterable[Resolution], aspect_ratios: Iterable[AspectRatio]
) -> dict[str, tuple[Resolution, AspectRatio]]:
    """``"WxH"`` -> (resolution, aspect ratio) for every resolution at every ratio."""
    ratios = list(aspect_ratios)
    return {
        "{}x{}".format(*frame_size(resolution, ratio)): (resolution, ratio)
        for resolution in resolutions
        for ratio in ratios
    }


# -- hosted-model platforms ----------------------------------------------------------------


class InputNames(BaseModel):
    """Which of a hosted model's inputs receive framegate's request fields. ``None``: the
    model has no such input, and a request that uses the field is refused."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = "prompt"
    negative_prompt: str | None = None
    seed: str | None = None
    # Whole seconds (e.g. "duration").
    duration: str | None = None
    # The frame rate and the exact frame count (e.g. "frames_per_second", "num_frames").
    fps: str | None = None
    num_frames: str | None = None
    # The first frame and the last frame, sent as data URIs (e.g. "image_url",
    # "end_image_url").
    input_image: str | None = None
    last_image: str | None = None

    def refuse(self, shape: VendorShape, model: str) -> None:
        """Refuse the request fields the model has no input for."""
        refuse_inputs(
            shape,
            model,
            input_image=self.input_image is not None,
            last_image=self.last_image is not None,
            negative_prompt=self.negative_prompt is not None,
            seed=self.seed is not None,
        )
