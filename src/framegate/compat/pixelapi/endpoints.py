"""PixelAPI's routes over the task and upload services."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import ValidationError

from framegate.catalog.service import tier_for
from framegate.compat.base import SECURITY, authorize
from framegate.compat.pixelapi.errors import (
    error_docs,
)
from framegate.compat.pixelapi.schemas import (
    DEFAULT_MODEL,
    IMAGE_FIELD,
    PixelGeneration,
    PixelVideoRequest,
)
from framegate.dependencies import SessionDep, absolute_url_builder
from framegate.exceptions import BadRequest, NotFound, ServiceUnavailable
from framegate.keys.scopes import Scope
from framegate.keys.service import AuthContext
from framegate.kit.forms import read_form
from framegate.kit.time import as_utc
from framegate.kit.validation import from_validation
from framegate.models import Task, TaskStatus, TaskType
from framegate.runtime import Runtime
from framegate.tasks.schemas import VideoGenerationRequest
from framegate.tasks.service import CheckedVideo
from framegate.uploads.schemas import UploadPurpose

# Generation ids: an RFC 9562 version-8 UUID whose low 53 bits are the task's number.
_NUMBER_MASK = (1 << 53) - 1
_UUID_STAMP = uuid.UUID("00000000-0000-8000-8000-000000000000").int

_MAX_ID_CHARS = 64


router = APIRouter(tags=["compat: pixelapi"])


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
    runtime: Runtime, session: SessionDep, auth: AuthContext, request: Request
) -> VideoGenerationRequest | CheckedVideo:
    """The request of a form. Its image is decoded and stored as an upload (in the
    request's transaction, with the task) only once the request has passed every check
    that costs no decode: plan, limits, credits."""
    async with read_form(runtime, request, file_field=IMAGE_FIELD, file_required=False) as form:
        # An empty form field (as browsers send unset inputs) reads as absent.
        fields = {name: value for name, value in form.fields.items() if value != ""}
        parsed = _parse(fields, from_form=True)
        if form.upload_id is None:
            return _to_framegate(runtime, parsed)
        parsed = parsed.model_copy(update={"image": form.upload_id})
        checked = await runtime.tasks.check_video(auth, _to_framegate(runtime, parsed))
        # Read here, not back through the database: the row is written with the task.
        checked.uploaded[form.upload_id] = await asyncio.to_thread(form.file.path.read_bytes)
        await runtime.uploads.store(
            session, auth.account.id, form, purpose=UploadPurpose.input_image
        )
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
    **SECURITY,
}


@router.post(
    "/v1/video/generate",
    response_model=PixelGeneration,
    responses=error_docs(400, 401, 402, 403, 413, 422, 429, 503),
    summary="PixelAPI: submit a text- or image-to-video generation",
    openapi_extra=_GENERATE_OPENAPI,
)
async def generate_video(request: Request, session: SessionDep) -> PixelGeneration:
    """PixelAPI's video endpoint: a JSON body, or multipart/form-data with the `image` file
    to animate. Answers at once with the generation_id to poll; credits are held until it
    ends and refunded if it fails."""
    runtime: Runtime = request.app.state.runtime
    auth = await authorize(request, Scope.videos_write)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
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
    responses=error_docs(401, 403, 404, 429),
    summary="PixelAPI: poll a video generation",
    openapi_extra=SECURITY,
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
