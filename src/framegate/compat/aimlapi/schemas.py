"""AI/ML API's video request and generation shapes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from framegate.compat.fields import AspectRatio, SecondsAsInt
from framegate.tasks.schemas import MAX_SEED

RESOLUTION_PATTERN = r"^(?:[0-9]{3,4}[pP]|[24][kK])$"


class AimlVideoRequest(BaseModel):
    """An AI/ML API video generation request (text-to-video, or image-to-video with
    image_url). Strict: a JSON ``true`` is not a duration, ``5.0`` is not a seed."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "model": "pixverse/v5/text-to-video",
                    "prompt": "A menacing evil dragon appears above the tallest mountain",
                    "resolution": "720p",
                    "aspect_ratio": "16:9",
                    "duration": 5,
                }
            ]
        },
    )

    model: str = Field(
        min_length=1,
        max_length=120,
        description="A framegate model id or alias (the operator's catalog can alias AI/ML "
        "names such as pixverse/v5/text-to-video onto a route).",
    )
    prompt: str = Field(min_length=1, max_length=4000)
    aspect_ratio: AspectRatio | None = Field(default=None, description="e.g. 16:9, 4:3, 1:1, 9:16.")
    ratio: AspectRatio | None = Field(default=None, description="Older AI/ML name of aspect_ratio.")
    resolution: str | None = Field(
        default=None,
        pattern=RESOLUTION_PATTERN,
        description="The short side: 360p, 540p, 720p, 1080p (any NNNp, 2k or 4k the model's "
        "sizes allow).",
    )
    duration: SecondsAsInt | None = Field(
        default=None, description='Seconds; a numeric string such as "5" is accepted too.'
    )
    negative_prompt: str | None = Field(default=None, max_length=4000)
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    image_url: str | None = Field(
        default=None,
        description="First frame: an http(s) URL, a data URI, bare base64 image bytes or a "
        "framegate upload id (upl_…).",
    )
    last_image_url: str | None = Field(
        default=None, description="Last frame (models with first+last-frame support)."
    )
    tail_image_url: str | None = Field(default=None, description="Kling's name of last_image_url.")
    camera_fixed: bool | None = None
    # Accepted so AI/ML clients' requests validate; framegate's engines have no equivalent.
    style: str | None = Field(default=None, description="Accepted, not applied.")
    generate_audio: bool | None = Field(default=None, description="Accepted, not applied.")
    enhance_prompt: bool | None = Field(default=None, description="Accepted, not applied.")
    prompt_optimizer: bool | None = Field(default=None, description="Accepted, not applied.")
    watermark: bool | None = Field(default=None, description="Accepted, not applied.")
    person_generation: str | None = Field(default=None, description="Accepted, not applied.")
    cfg_scale: float | None = Field(default=None, description="Accepted, not applied.")
    motion_mode: str | None = Field(default=None, description="Accepted, not applied.")
    lip_sync_tts_content: str | None = Field(
        default=None, description="Not supported: a non-empty value is refused."
    )
    lip_sync_tts_speaker: str | None = Field(default=None, description="Accepted, not applied.")


class AimlVideo(BaseModel):
    url: str = Field(description="Signed, expiring download URL of the MP4.")
    content_type: str | None = None
    file_name: str | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None


class AimlGenerationError(BaseModel):
    name: str = Field(description="framegate's error code, e.g. engine_error or cancelled.")
    message: str


class AimlUsage(BaseModel):
    credits_used: int = Field(
        description="framegate credits: held while the generation runs, then what was "
        "charged (0 when it failed and was refunded)."
    )


class AimlMeta(BaseModel):
    usage: AimlUsage | None = None


class AimlGeneration(BaseModel):
    """A generation as AI/ML API shows it; absent fields are omitted."""

    id: str = Field(description="The generation id (the framegate task id).")
    generation_id: str | None = Field(
        default=None, description="The same id, under the name AI/ML's older clients read."
    )
    status: Literal["queued", "generating", "completed", "error"]
    video: AimlVideo | None = None
    error: AimlGenerationError | None = None
    meta: AimlMeta | None = None


class AimlErrorBody(BaseModel):
    """AI/ML API's error envelope."""

    statusCode: int = Field(examples=[400])
    message: str
    path: str
    requestId: str | None = None
    timestamp: str = Field(examples=["2025-03-11T07:13:27.813Z"])
    code: str = Field(description="framegate's machine code, e.g. invalid_value.")
    param: str | None = Field(default=None, description="The request field at fault.")
