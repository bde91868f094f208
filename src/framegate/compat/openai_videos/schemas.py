"""Request and response bodies of OpenAI's Videos API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from framegate.compat.fields import SecondsAsString, Size

DEFAULT_MODEL = "sora-2"
# How long OpenAI's SDK (create_and_poll, poll) waits before it polls an unfinished video.
POLL_AFTER_MS = 1000
POLL_HEADER = "openai-poll-after-ms"


class OpenAIInputReference(BaseModel):
    """A reference image given by URL or by upload id instead of as a file."""

    model_config = ConfigDict(extra="forbid", strict=True)

    image_url: str | None = Field(
        default=None, description="An http(s) URL or a base64 data URL of a PNG, JPEG or WebP."
    )
    file_id: str | None = Field(
        default=None, max_length=40, description="An image upload's id (upl_…, POST /v1/uploads)."
    )

    @model_validator(mode="after")
    def _one_source(self) -> OpenAIInputReference:
        if (self.image_url is None) == (self.file_id is None):
            raise PydanticCustomError("one_source", "give exactly one of image_url and file_id")
        return self


class OpenAIVideoCreateRequest(BaseModel):
    """POST /v1/videos, as JSON or as multipart/form-data (``input_reference`` then a file).
    Strict: every form field is a string, and so is every JSON field but ``seconds``."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"model": "sora-2", "prompt": "A calico cat on a skateboard", "seconds": "4"}
            ]
        },
    )

    prompt: str = Field(min_length=1, max_length=4000)
    model: str = Field(
        default=DEFAULT_MODEL,
        min_length=1,
        max_length=120,
        description="A catalog route id or alias (the operator maps sora-2, sora-2-pro).",
    )
    seconds: SecondsAsString | None = Field(
        default=None,
        description="Whole seconds as a string ('4', '8', '12'; a JSON integer is taken too); "
        "the model's range applies. Default: the model's default duration.",
    )
    size: Size | None = Field(
        default=None,
        description="'WIDTHxHEIGHT', e.g. '1280x720'. Default: the model's default size.",
    )
    input_reference: OpenAIInputReference | None = None


class OpenAIVideoRemixRequest(BaseModel):
    """POST /v1/videos/{video_id}/remix."""

    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: str = Field(min_length=1, max_length=4000)


class OpenAIVideoError(BaseModel):
    code: str
    message: str


class OpenAIVideo(BaseModel):
    """A video job as OpenAI's Videos API describes it."""

    id: str = Field(description="The framegate task id (task_…).")
    object: Literal["video"] = "video"
    model: str = Field(description="The catalog route that serves the video.")
    status: Literal["queued", "in_progress", "completed", "failed"]
    progress: int = Field(ge=0, le=100)
    created_at: int
    completed_at: int | None = None
    expires_at: int | None = Field(
        default=None, description="When the stored files are deleted (retention)."
    )
    prompt: str | None = None
    seconds: str
    size: str
    error: OpenAIVideoError | None = None
    remixed_from_video_id: str | None = None


class OpenAIVideoList(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIVideo]
    first_id: str | None = None
    last_id: str | None = Field(default=None, description="Pass as 'after' for the next page.")
    has_more: bool


class OpenAIVideoDeleted(BaseModel):
    id: str
    object: Literal["video.deleted"] = "video.deleted"
    deleted: bool = True


class OpenAIErrorBody(BaseModel):
    message: str
    type: str = Field(examples=["invalid_request_error"])
    param: str | None = None
    code: str | None = Field(default=None, examples=["invalid_value"])


class OpenAIErrorResponse(BaseModel):
    """OpenAI's error envelope."""

    error: OpenAIErrorBody
