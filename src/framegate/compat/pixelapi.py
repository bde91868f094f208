"""The PixelAPI dialect: ``POST /v1/video/generate`` and ``GET /v1/video/{id}``.

Client code written for PixelAPI works by changing the base URL and the key. Requests are
translated onto the one task service (a multipart image becomes an upload whose id is the
task's input_image) and tasks are rendered in PixelAPI's generation shape; nothing here
keeps state. A generation id is a UUID that carries the task's integer alias, so it maps
back to the task without a table of its own; the native ``task_…`` id is accepted too.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from framegate.catalog.service import tier_for
from framegate.compat.base import authorize, dialect_route, error_param, request_id
from framegate.compat.fields import AspectRatio
from framegate.dependencies import API_KEY_SCHEME, absolute_url_builder
from framegate.exceptions import BadRequest, FramegateError, NotFound, ServiceUnavailable
from framegate.keys.scopes import Scope
from framegate.keys.service import AuthContext
from framegate.kit.time import as_utc
from framegate.kit.validation import from_validation
from framegate.models import Task, TaskStatus, TaskType
from framegate.runtime import Runtime
from framegate.tasks.schemas import MAX_SEED, VideoGenerationRequest
from framegate.tasks.service import CheckedVideo
from framegate.uploads.schemas import UploadPurpose

# The catalog name PixelAPI requests go to when they name no model: the operator gives
# this alias to the video route that should serve PixelAPI clients.
DEFAULT_MODEL = "pixelapi"
# The multipart field that carries the image of an image-to-video request.
IMAGE_FIELD = "image"

# Generation ids: an RFC 9562 version-8 UUID whose low 53 bits are the task's number.
_NUMBER_MASK = (1 << 53) - 1
_UUID_STAMP = uuid.UUID("00000000-0000-8000-8000-000000000000").int

_MAX_ID_CHARS = 64

# framegate's request field names → PixelAPI's, for the `param` of errors.
_RENAMES = {
    "input_image": "image",
    "file": "image",
    "size": "resolution",
    "task_id": "generation_id",
}


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


ERROR_MODEL = PixelError


_ERROR_DESCRIPTIONS = {
    400: "Malformed request (not JSON or multipart, invalid JSON)",
    401: "Missing or invalid API key",
    402: "Not enough credits",
    403: "The key may not do this",
    404: "No such generation",
    413: "Image too large",
    422: "A field has an invalid value",
    429: "Rate or concurrent-generation limit (see Retry-After)",
    503: "No model for PixelAPI requests, or the model is failing",
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"description": _ERROR_DESCRIPTIONS[s], "model": PixelError} for s in statuses}


# Errors by framegate code, then by status: a small, stable vocabulary for clients.
_CODES_BY_CODE = {
    "invalid_json": "invalid_json",
    "missing_api_key": "missing_api_key",
    "missing_parameter": "missing_parameter",
    "unknown_parameter": "unknown_parameter",
    "unsupported_parameter": "unknown_parameter",
    "model_not_found": "model_not_found",
    "model_kind_mismatch": "model_not_found",
    "model_unavailable": "model_not_found",
    "concurrency_limit_exceeded": "concurrency_limit_exceeded",
}
_CODES_BY_STATUS = {
    400: "invalid_request",
    401: "invalid_api_key",
    402: "insufficient_credits",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    410: "not_found",
    413: "file_too_large",
    422: "invalid_parameter",
    429: "rate_limit_exceeded",
    503: "service_unavailable",
}


def dialect_code(error: FramegateError) -> str:
    """PixelAPI's code for a framegate error."""
    if error.code in _CODES_BY_CODE:
        return _CODES_BY_CODE[error.code]
    if error.status_code == 422 and error_param(error, _RENAMES) == IMAGE_FIELD:
        return "invalid_image"
    return _CODES_BY_STATUS.get(error.status_code, "internal_error")


def render_error(request: Request, error: FramegateError) -> Response:
    """Every error of these routes, in PixelAPI's envelope, with framegate's HTTP status."""
    body = PixelError(
        error=PixelErrorBody(
            code=dialect_code(error),
            message=error.message,
            param=error_param(error, _RENAMES),
            request_id=request_id(request),
        ),
        detail=error.message,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=error.status_code)


router = APIRouter(route_class=dialect_route(render_error), tags=["compat: pixelapi"])


def generation_id(task: Task) -> str:
    """The UUID a PixelAPI client sees for ``task`` (its ``task_…`` id if it has no number)."""
    if task.number is None:
        return task.id
    return str(uuid.UUID(int=_UUID_STAMP | task.number))


def task_number(value: str) -> int | None:
    """The task number carried by a generation id, or None if it is not one."""
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return None
    if parsed.int & ~_NUMBER_MASK != _UUID_STAMP:
        return None
    return parsed.int & _NUMBER_MASK or None


def _iso(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat().replace("+00:00", "Z")


_STATUSES: dict[str, Literal["processing", "completed", "failed"]] = {
    TaskStatus.queued: "processing",
    TaskStatus.processing: "processing",
    TaskStatus.completed: "completed",
    TaskStatus.failed: "failed",
    TaskStatus.cancelled: "failed",
}


def render_generation(
    runtime: Runtime, task: Task, absolute: Callable[[str], str]
) -> PixelGeneration:
    """A task in PixelAPI's generation shape."""
    view = runtime.tasks.to_object(task, absolute)
    output = view.result.data[0] if view.result and view.result.data else None
    params = task.params
    width, height = int(params.get("width", 0)), int(params.get("height", 0))
    terminal = TaskStatus(task.status).is_terminal()
    error_message = task.error_message
    if task.status == TaskStatus.cancelled:
        error_message = "The generation was cancelled; its credits were refunded."
    elif task.status == TaskStatus.failed:
        reason = (error_message or task.error_code or "Generation failed").rstrip(". ")
        error_message = f"{reason}. The credits were refunded."
    return PixelGeneration(
        generation_id=generation_id(task),
        task_id=task.id,
        status=_STATUSES[task.status],
        model=task.model,
        prompt=str(params.get("prompt", "")),
        resolution=tier_for(width, height) if width and height else "",
        width=width,
        height=height,
        duration=params.get("duration"),
        camera_fixed=bool(params.get("camera_fixed", False)),
        output_url=output.url if output else None,
        thumbnail_url=output.thumbnail_url if output else None,
        progress=task.progress,
        estimated_seconds=task.estimated_seconds,
        # PixelAPI charges on submission and refunds failures: what the task holds while
        # it runs, then what it captured (0 when released).
        credits_used=task.credits_used if terminal else task.credits_reserved,
        processing_ms=task.processing_ms,
        error_message=error_message,
        created_at=_iso(task.created_at) or "",
        completed_at=_iso(task.completed_at),
    )


def _parse(fields: dict[str, Any], *, from_form: bool = False) -> PixelVideoRequest:
    try:
        # A form's fields are all text: "5" is the duration 5 there, never in JSON.
        return PixelVideoRequest.model_validate(fields, strict=not from_form)
    except ValidationError as exc:
        raise from_validation(exc.errors()) from None


def _to_framegate(runtime: Runtime, request: PixelVideoRequest) -> VideoGenerationRequest:
    """The native request for a PixelAPI one (its errors name PixelAPI's fields)."""
    if request.model is None and runtime.catalog.get(DEFAULT_MODEL) is None:
        raise ServiceUnavailable(
            "This framegate installation has no model for PixelAPI requests: its operator "
            f"must give a video route the alias {DEFAULT_MODEL!r} in the catalog file "
            "(or send 'model').",
            code="model_not_configured",
        )
    try:
        return VideoGenerationRequest(
            model=request.model or DEFAULT_MODEL,
            prompt=request.prompt,
            duration=request.duration,
            resolution=request.resolution,
            aspect_ratio=request.aspect_ratio,
            input_image=request.image,
            negative_prompt=request.negative_prompt,
            seed=request.seed,
            camera_fixed=request.camera_fixed,
            webhook_url=request.webhook_url,
        )
    except ValidationError as exc:
        raise from_validation(exc.errors()) from None


async def _read_json(request: Request) -> PixelVideoRequest:
    raw = await request.body()
    if not raw.strip():
        raise BadRequest(
            "The request needs a JSON body with at least 'prompt'.", code="missing_body"
        )
    try:
        fields = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadRequest("The body is not valid JSON.", code="invalid_json") from None
    if not isinstance(fields, dict):
        raise BadRequest("The body must be a JSON object.", code="invalid_json")
    return _parse(fields)


async def _checked_form(
    runtime: Runtime, session: AsyncSession, auth: AuthContext, request: Request
) -> VideoGenerationRequest | CheckedVideo:
    """The request of a form. Its image is decoded and stored as an upload (committed: the
    task service reads it back through its own session) only once the request has passed
    every check that costs no decode: plan, limits, credits."""
    async with runtime.uploads.receive_form(
        request.stream(),
        content_type=request.headers.get("content-type"),
        content_length=request.headers.get("content-length"),
        file_field=IMAGE_FIELD,
        text_fields=None,
        file_required=False,
    ) as form:
        # An empty form field (as browsers send unset inputs) reads as absent.
        fields = {name: value for name, value in form.fields.items() if value != ""}
        parsed = _parse(fields, from_form=True)
        if form.upload_id is None:
            return _to_framegate(runtime, parsed)
        parsed = parsed.model_copy(update={"image": form.upload_id})
        checked = await runtime.tasks.check_video(auth, _to_framegate(runtime, parsed))
        await runtime.uploads.store(
            session, auth.account.id, form, purpose=UploadPurpose.input_image
        )
    await session.commit()
    return checked


_FORM_FIELDS: dict[str, Any] = {
    name: schema
    for name, schema in PixelVideoRequest.model_json_schema()["properties"].items()
    if name != IMAGE_FIELD
}
_GENERATE_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": PixelVideoRequest.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["prompt"],
                    "properties": {
                        **_FORM_FIELDS,
                        IMAGE_FIELD: {
                            "type": "string",
                            "format": "binary",
                            "description": "Image-to-video: the PNG, JPEG or WebP to animate.",
                        },
                    },
                }
            },
        },
    },
    "security": [{API_KEY_SCHEME: []}],
}


@router.post(
    "/v1/video/generate",
    response_model=PixelGeneration,
    responses=_errors(400, 401, 402, 403, 413, 422, 429, 503),
    summary="PixelAPI: submit a text- or image-to-video generation",
    openapi_extra=_GENERATE_OPENAPI,
)
async def generate_video(request: Request) -> PixelGeneration:
    """PixelAPI's video endpoint: a JSON body, or multipart/form-data with the `image` file
    to animate. Answers at once with the generation_id to poll; credits are held until it
    ends and refunded if it fails."""
    runtime: Runtime = request.app.state.runtime
    auth = await authorize(request, Scope.videos_write)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    async with runtime.sessionmaker() as session:
        body: VideoGenerationRequest | CheckedVideo
        if media_type == "multipart/form-data":
            body = await _checked_form(runtime, session, auth, request)
        elif media_type in ("", "application/json") or media_type.endswith("+json"):
            body = _to_framegate(runtime, await _read_json(request))
        else:
            raise BadRequest(
                f"Unsupported Content-Type {media_type!r}: send application/json, or "
                "multipart/form-data with the image in the 'image' field.",
                code="unsupported_media_type",
            )
        task = await runtime.tasks.submit_video(session, auth, body)
        await session.commit()
    runtime.signals.task_queued()
    return render_generation(runtime, task, absolute_url_builder(request))


async def _find(runtime: Runtime, account_id: str, value: str) -> Task:
    number = task_number(value) if len(value) <= _MAX_ID_CHARS else None
    try:
        if number is not None:
            task = await runtime.tasks.get_by_number(account_id, number)
        elif value.startswith("task_") and len(value) <= _MAX_ID_CHARS:
            task = await runtime.tasks.get(account_id, value)
        else:
            task = None
    except NotFound:
        task = None
    if task is None or task.type != TaskType.video_generation:
        raise NotFound(
            f"No video generation {value[:_MAX_ID_CHARS]!r}.",
            param="generation_id",
            code="task_not_found",
        )
    return task


@router.get(
    "/v1/video/{generation_id}",
    response_model=PixelGeneration,
    responses=_errors(401, 403, 404, 429),
    summary="PixelAPI: poll a video generation",
    openapi_extra={"security": [{API_KEY_SCHEME: []}]},
)
async def get_video(
    generation_id: Annotated[str, Path(description="The generation_id (or the task_… id).")],
    request: Request,
) -> PixelGeneration:
    """The generation's status (processing, completed or failed); once completed, download
    the MP4 from output_url. A failed generation carries error_message and is refunded."""
    runtime: Runtime = request.app.state.runtime
    auth = await authorize(request, Scope.tasks_read)
    task = await _find(runtime, auth.account.id, generation_id)
    return render_generation(runtime, task, absolute_url_builder(request))
