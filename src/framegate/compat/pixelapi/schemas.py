"""PixelAPI's request and generation shapes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from framegate.compat.fields import AspectRatio
from framegate.tasks.schemas import MAX_SEED

# The catalog name PixelAPI requests go to when they name no model: the operator gives
# this alias to the video route that should serve PixelAPI clients.
DEFAULT_MODEL = "pixelapi"
# The multipart field that carries the image of an image-to-video request.
IMAGE_FIELD = "image"


class PixelVideoRequest(BaseModel):
    """A PixelAPI video request: JSON, or the same fields as multipart/form-data with the
    image of an image-to-video request in the `image` file field. Strict for JSON (a JSON
    ``true`` is not a duration); form fields are text and are read as their types."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "prompt": "A cinematic drone shot gliding over a misty mountain valley",
                    "resolution": "1080p",
                    "duration": 5,
                }
            ]
        },
    )

    prompt: str = Field(min_length=1, max_length=4000)
    resolution: Literal["720p", "1080p"] | None = Field(
        default=None, description="Output resolution; default: the model's default size."
    )
    duration: int | None = Field(
        default=None, description="Clip length in seconds (PixelAPI's clips are 5 s)."
    )
    camera_fixed: bool = Field(
        default=False, description="Lock the virtual camera: motion in the scene, no drift."
    )
    aspect_ratio: AspectRatio | None = Field(
        default=None, description="framegate extension, e.g. '9:16'; default 16:9."
    )
    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=120,
        description=f"framegate extension: a catalog model; default '{DEFAULT_MODEL}'.",
    )
    image: str | None = Field(
        default=None,
        description="JSON only (framegate extension): the image to animate as an http(s) "
        "URL, a data URI or an upload id. In a form, `image` is the file itself.",
    )
    negative_prompt: str | None = Field(
        default=None, max_length=4000, description="framegate extension."
    )
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED, description="framegate extension.")
    webhook_url: str | None = Field(
        default=None,
        max_length=2000,
        description="framegate extension: notified when the generation ends.",
    )


class PixelGeneration(BaseModel):
    """A generation as PixelAPI reports it (submission and polling alike)."""

    generation_id: str = Field(description="Poll GET /v1/video/{generation_id}.")
    task_id: str = Field(description="The same generation in framegate's API: /v1/tasks/{id}.")
    status: Literal["processing", "completed", "failed"]
    model: str
    prompt: str
    resolution: str = Field(examples=["1080p"])
    width: int
    height: int
    duration: int | None = None
    camera_fixed: bool = False
    output_url: str | None = Field(
        default=None, description="The MP4 (a signed, expiring URL) once completed."
    )
    thumbnail_url: str | None = None
    progress: int = Field(ge=0, le=100)
    estimated_seconds: int
    credits_used: int = Field(
        description="Charged for this generation: held while it runs, 0 once refunded."
    )
    processing_ms: int | None = None
    error_message: str | None = None
    created_at: str = Field(description="ISO 8601, UTC.")
    completed_at: str | None = None


class PixelErrorBody(BaseModel):
    code: str = Field(examples=["insufficient_credits"])
    message: str
    param: str | None = Field(default=None, description="The request field at fault.")
    request_id: str | None = None


class PixelError(BaseModel):
    """PixelAPI errors: the HTTP status, `error` for programs, `detail` for people."""

    error: PixelErrorBody
    detail: str = Field(description="The message again, where FastAPI-style clients read it.")
