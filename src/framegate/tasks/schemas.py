"""Request and response bodies of the native task routes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from framegate.catalog.schemas import ResolutionTier
from framegate.kit.dialect_fields import refuse_dialect_fields
from framegate.kit.views import OptionalUnixTime, UnixTime

MAX_SEED = 2**32 - 1
# Exact shapes: no signs, spaces or trailing newlines slip through to the planner.
SIZE_PATTERN = r"^[0-9]{1,5}x[0-9]{1,5}$"
ASPECT_RATIO_PATTERN = r"^[0-9]{1,3}:[0-9]{1,3}$"


class VideoGenerationRequest(BaseModel):
    """Submit a text-to-video or image-to-video task."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "model": "preview",
                    "prompt": "A cinematic reveal of a smart speaker",
                    "duration": 5,
                    "size": "1280x720",
                }
            ]
        },
    )

    model: str = Field(min_length=1, max_length=120, description="Model id or alias.")
    prompt: str = Field(min_length=1, max_length=4000)
    duration: StrictInt | None = Field(default=None, description="Clip length in whole seconds.")
    size: str | None = Field(
        default=None, pattern=SIZE_PATTERN, description="'WIDTHxHEIGHT', e.g. '1280x720'."
    )
    resolution: ResolutionTier | None = Field(
        default=None, description="Instead of size: 480p, 720p or 1080p with aspect_ratio."
    )
    aspect_ratio: str | None = Field(
        default=None, pattern=ASPECT_RATIO_PATTERN, description="With resolution, e.g. '16:9'."
    )
    fps: StrictInt | None = Field(default=None, ge=1, le=120)
    num_frames: StrictInt | None = Field(
        default=None,
        ge=1,
        description="Instead of duration: the exact frame count (some models need k*4+1 "
        "or k*8+1; the model's capabilities say which).",
    )
    input_image: str | None = Field(
        default=None,
        description="Image-to-video source: an http(s) URL, a data URI (PNG, JPEG, WebP) "
        "or an upload id.",
    )
    last_image: str | None = Field(
        default=None,
        description="With input_image, the clip's last frame (models with first_last_frame).",
    )
    negative_prompt: str | None = Field(default=None, max_length=4000)
    seed: StrictInt | None = Field(default=None, ge=0, le=MAX_SEED)
    camera_fixed: StrictBool = False
    webhook_url: str | None = Field(default=None, max_length=2000)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=16)

    _refuse_dialects = model_validator(mode="before")(refuse_dialect_fields)


class ImageGenerationRequest(BaseModel):
    """Generate images (answers when they are ready, or 202 with the task)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"model": "preview-image", "prompt": "A product hero shot", "n": 1}]
        },
    )

    model: str = Field(min_length=1, max_length=120)
    prompt: str = Field(min_length=1, max_length=4000)
    n: StrictInt = Field(default=1, ge=1, le=10)
    size: str | None = Field(default=None, pattern=SIZE_PATTERN, description="'WIDTHxHEIGHT'.")
    negative_prompt: str | None = Field(default=None, max_length=4000)
    seed: StrictInt | None = Field(default=None, ge=0, le=MAX_SEED)
    webhook_url: str | None = Field(default=None, max_length=2000)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=16)

    _refuse_dialects = model_validator(mode="before")(refuse_dialect_fields)


class EstimateRequest(VideoGenerationRequest):
    """What a generation request would cost: any video or image generation request (fields
    that do not change the price, such as the prompt or webhook_url, are accepted and
    ignored)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"model": "preview", "duration": 5, "size": "1280x720"}]},
    )

    prompt: str | None = Field(default=None, max_length=4000)  # type: ignore[assignment]
    n: StrictInt | None = Field(default=None, ge=1, le=10, description="Images (image models).")


class TaskOutput(BaseModel):
    url: str
    content_type: str
    width: int
    height: int
    thumbnail_url: str | None = None
    duration: float | None = None
    fps: int | None = None
    num_frames: int | None = None


class TaskResult(BaseModel):
    data: list[TaskOutput]


class TaskError(BaseModel):
    code: str
    message: str


class TaskObject(BaseModel):
    id: str
    object: Literal["task"] = "task"
    type: str
    status: Literal["queued", "processing", "completed", "failed", "cancelled"]
    model: str
    progress: int = Field(ge=0, le=100)
    created_at: UnixTime = Field(description="Unix seconds.")
    started_at: OptionalUnixTime = None
    completed_at: OptionalUnixTime = None
    expires_at: OptionalUnixTime = Field(
        default=None, description="When the outputs are deleted (their URLs then answer 410)."
    )
    estimated_seconds: int
    processing_ms: int | None = None
    credits_reserved: int
    credits_used: int
    credits_refunded: int
    attempts: int
    served_by: str | None = Field(
        default=None,
        description="The route that made the outputs (another than `model` after a fallback).",
    )
    input: dict[str, Any]
    metadata: dict[str, str]
    result: TaskResult | None = None
    error: TaskError | None = None


class TaskList(BaseModel):
    object: Literal["list"] = "list"
    data: list[TaskObject]
    has_more: bool
    next_cursor: str | None = Field(
        default=None, description="Pass as 'after' to get the next page."
    )


class ImageData(BaseModel):
    url: str
    width: int
    height: int
    thumbnail_url: str | None = None


class ImageGenerationResponse(BaseModel):
    created: int
    data: list[ImageData]
    task_id: str
    model: str
    credits_used: int
