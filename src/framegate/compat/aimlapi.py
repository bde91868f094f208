"""AI/ML API (aimlapi.com) video generation dialect.

Client code written for AI/ML API works against framegate by changing the base URL and the
key: ``POST /v2/generate/video/{vendor}/generation`` queues a generation and answers its id;
``GET /v2/generate/video/{vendor}/generation?generation_id=…`` answers its status and, once
completed, ``video.url``. AI/ML's vendor-less universal URL (``/v2/video/generations``)
routes to the same handlers. The generation id is the framegate task id, so the task is the
same one ``GET /v1/tasks/{id}`` shows. Errors come back in AI/ML's envelope
``{"statusCode", "message", "path", "requestId", "timestamp"}`` (plus framegate's ``code``
and ``param``), with AI/ML's statuses: invalid bodies are 400, missing credits are 403.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from framegate.compat.base import authorize, dialect_route, error_param, request_id
from framegate.compat.fields import AspectRatio, SecondsAsInt
from framegate.dependencies import API_KEY_SCHEME, AbsoluteURL, RuntimeDep, SessionDep
from framegate.exceptions import BadRequest, FramegateError, InvalidValue, NotFound
from framegate.keys.scopes import Scope
from framegate.keys.service import AuthContext
from framegate.kit.validation import from_validation
from framegate.models import Task, TaskStatus, TaskType
from framegate.runtime import Runtime
from framegate.tasks.schemas import MAX_SEED, TaskObject, VideoGenerationRequest
from framegate.tasks.service import UPLOAD_ID_PREFIX

# framegate's names of request fields → the names an AI/ML client sent.
RENAMES = {
    "input_image": "image_url",
    "last_image": "last_image_url",
    "size": "resolution",
    "task_id": "generation_id",
}
# AI/ML answers an invalid body with 400 and missing credits with 403; other statuses match.
STATUSES = {422: 400, 402: 403}
_MESSAGE_RENAMES = [
    (re.compile(r"\binput_image\b"), "image_url"),
    (re.compile(r"\blast_image\b"), "last_image_url"),
]

_TIER_RESOLUTIONS = frozenset({"480p", "720p", "1080p"})
RESOLUTION_PATTERN = r"^(?:[0-9]{3,4}[pP]|[24][kK])$"
_RESOLUTION_RE = re.compile(r"^(\d{3,4})p$")
_NAMED_RESOLUTIONS = {"2k": 1440, "4k": 2160}
_ASPECT_RE = re.compile(r"^(\d{1,3}):(\d{1,3})$")
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# AI/ML takes "a Base64-encoded local image" in image_url without a data: prefix.
_BARE_BASE64_RE = re.compile(r"^[A-Za-z0-9+/=_\-\s]{64,}$")


def render_error(request: Request, error: FramegateError) -> Response:
    """An error in AI/ML API's envelope (statusCode, message, path, requestId, timestamp)."""
    status = STATUSES.get(error.status_code, error.status_code)
    message = error.message
    for pattern, name in _MESSAGE_RENAMES:
        message = pattern.sub(name, message)
    if status == 400 and request.method == "POST":
        # AI/ML's message for every invalid body, followed by what is wrong.
        message = f"Body validation error! {message}"
    body = {
        "statusCode": status,
        "message": message,
        "path": request.url.path,
        "requestId": request_id(request),
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        # framegate's additions: a stable machine code and the field at fault.
        "code": error.code,
        "param": error_param(error, RENAMES),
    }
    return JSONResponse(body, status_code=status)


router = APIRouter(route_class=dialect_route(render_error), tags=["compat: aimlapi"])


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


ERROR_MODEL = AimlErrorBody


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Body validation error (invalid or missing field)",
        401: "Missing or invalid API key",
        403: "Out of credits, or the key lacks the scope",
        404: "No such generation in this account",
        429: "Too many requests or too many generations running (see Retry-After)",
        503: "The model is unavailable right now",
    }
    responses: dict[int | str, dict[str, Any]] = {
        status: {"description": descriptions[status], "model": AimlErrorBody} for status in statuses
    }
    responses["4XX"] = {"description": "Any other client error", "model": AimlErrorBody}
    return responses


async def _video_writer(request: Request) -> AuthContext:
    return await authorize(request, Scope.videos_write)


async def _task_reader(request: Request) -> AuthContext:
    return await authorize(request, Scope.tasks_read)


VideoWriter = Annotated[AuthContext, Depends(_video_writer)]
TaskReader = Annotated[AuthContext, Depends(_task_reader)]
Vendor = Annotated[
    str,
    Path(
        max_length=64,
        description="AI/ML's vendor segment (pixverse, kling, google, …); any value works, "
        "the model decides.",
    ),
]
GenerationId = Annotated[
    str,
    Query(
        min_length=1,
        max_length=200,
        description="The id the create call answered (task_…; also its numeric alias).",
    ),
]
_SECURITY: dict[str, Any] = {"security": [{API_KEY_SCHEME: []}]}


def _geometry(body: AimlVideoRequest, runtime: Runtime) -> dict[str, str | None]:
    """AI/ML's resolution + aspect ratio as framegate's resolution tier, or as an exact
    size when the resolution is not a framegate tier (360p, 540p, 4k…)."""
    aspect = body.aspect_ratio or body.ratio
    if body.resolution is None:
        return {"aspect_ratio": aspect}
    resolution = body.resolution.strip().lower()
    if resolution in _TIER_RESOLUTIONS:
        return {"resolution": resolution, "aspect_ratio": aspect}
    short = _NAMED_RESOLUTIONS.get(resolution)
    if short is None:
        match = _RESOLUTION_RE.match(resolution)
        if match is None:
            raise InvalidValue(
                "resolution must look like 720p (the short side in pixels); "
                f"got {body.resolution!r}.",
                param="resolution",
            )
        short = int(match[1])
    route = runtime.catalog.get(body.model)
    multiple = route.capabilities.size_multiple if route is not None else 2
    return {"size": _size(short, aspect or "16:9", multiple)}


def _size(short: int, aspect: str, multiple: int) -> str:
    match = _ASPECT_RE.match(aspect.strip())
    if match is None or int(match[1]) == 0 or int(match[2]) == 0:
        raise InvalidValue(
            f"aspect_ratio must look like '16:9'; got {aspect!r}.", param="aspect_ratio"
        )
    a, b = int(match[1]), int(match[2])
    short_side = short // multiple * multiple
    long_side = round(short * max(a, b) / min(a, b) / multiple) * multiple
    return f"{long_side}x{short_side}" if a >= b else f"{short_side}x{long_side}"


def _image(value: str | None) -> str | None:
    """An image reference as framegate takes it: bare base64 becomes a data URI (the image's
    real format is decided by decoding it)."""
    if value is None:
        return None
    stripped = value.strip()
    if stripped.startswith(UPLOAD_ID_PREFIX) or _SCHEME_RE.match(stripped):
        return stripped
    if _BARE_BASE64_RE.match(stripped):
        return "data:image/png;base64," + stripped
    return stripped


def to_native(body: AimlVideoRequest, runtime: Runtime) -> VideoGenerationRequest:
    """The framegate request an AI/ML request stands for."""
    if body.lip_sync_tts_content:
        raise BadRequest(
            "Lip-sync (lip_sync_tts_content) is not supported by this server; drop the field.",
            param="lip_sync_tts_content",
            code="unsupported_parameter",
        )
    if body.last_image_url is not None and body.tail_image_url is not None:
        raise InvalidValue(
            "Give either last_image_url or tail_image_url, not both.", param="tail_image_url"
        )
    fields: dict[str, Any] = {
        "model": body.model,
        "prompt": body.prompt,
        "duration": body.duration,
        "negative_prompt": body.negative_prompt,
        "seed": body.seed,
        "input_image": _image(body.image_url),
        "last_image": _image(body.last_image_url or body.tail_image_url),
        **_geometry(body, runtime),
    }
    if body.camera_fixed is not None:
        fields["camera_fixed"] = body.camera_fixed
    try:
        return VideoGenerationRequest(**fields)
    except ValidationError as exc:
        raise from_validation(exc.errors()) from None


_STATUSES: dict[str, Literal["queued", "generating", "completed", "error"]] = {
    TaskStatus.queued: "queued",
    TaskStatus.processing: "generating",
    TaskStatus.completed: "completed",
    TaskStatus.failed: "error",
    TaskStatus.cancelled: "error",
}


def to_generation(view: TaskObject) -> AimlGeneration:
    """A framegate task in AI/ML's generation shape."""
    status = _STATUSES[view.status]
    terminal = TaskStatus(view.status).is_terminal()
    video = None
    if view.result is not None and view.result.data:
        output = view.result.data[0]
        video = AimlVideo(
            url=output.url,
            content_type=output.content_type,
            file_name=urlsplit(output.url).path.rsplit("/", 1)[-1] or None,
            width=output.width,
            height=output.height,
            duration=output.duration,
        )
    error = None
    if view.status == TaskStatus.cancelled:
        error = AimlGenerationError(
            name="cancelled", message="The generation was cancelled; its credits were released."
        )
    elif view.error is not None:
        error = AimlGenerationError(name=view.error.code, message=view.error.message)
    credits = view.credits_used if terminal else view.credits_reserved
    return AimlGeneration(
        id=view.id,
        status=status,
        video=video,
        error=error,
        meta=AimlMeta(usage=AimlUsage(credits_used=credits)),
    )


async def _find(runtime: Runtime, account_id: str, generation_id: str) -> Task:
    """The account's video task named by ``generation_id``: its task id (AI/ML-style
    ``id:model`` suffixes are ignored) or its numeric alias."""
    value = generation_id.strip().split(":", 1)[0]
    if value.isdigit() and len(value) <= 16:
        task = await runtime.tasks.get_by_number(account_id, int(value))
    else:
        task = await runtime.tasks.get(account_id, value)
    if task.type != TaskType.video_generation:
        raise NotFound(
            f"No video generation {generation_id!r}.",
            param="generation_id",
            code="task_not_found",
        )
    return task


async def _submit(
    body: AimlVideoRequest, runtime: Runtime, session: AsyncSession, auth: AuthContext
) -> AimlGeneration:
    native = to_native(body, runtime)
    task = await runtime.tasks.submit_video(session, auth, native)
    await session.commit()
    runtime.signals.task_queued()
    return AimlGeneration(
        id=task.id,
        generation_id=task.id,
        status=_STATUSES[task.status],
        meta=AimlMeta(usage=AimlUsage(credits_used=task.credits_reserved)),
    )


async def _poll(
    generation_id: str, runtime: Runtime, auth: AuthContext, absolute: Callable[[str], str]
) -> AimlGeneration:
    task = await _find(runtime, auth.account.id, generation_id)
    return to_generation(runtime.tasks.to_object(task, absolute))


@router.post(
    "/v2/generate/video/{vendor}/generation",
    response_model=AimlGeneration,
    response_model_exclude_none=True,
    responses=_errors(400, 401, 403, 429, 503),
    summary="AI/ML API: create a video generation",
    openapi_extra=_SECURITY,
)
async def create_generation(
    vendor: Vendor,
    body: AimlVideoRequest,
    runtime: RuntimeDep,
    session: SessionDep,
    auth: VideoWriter,
) -> AimlGeneration:
    """Queue a text-to-video (or, with image_url, image-to-video) generation; answers its id
    with status queued. Poll it with GET on the same URL and ?generation_id=."""
    return await _submit(body, runtime, session, auth)


@router.get(
    "/v2/generate/video/{vendor}/generation",
    response_model=AimlGeneration,
    response_model_exclude_none=True,
    responses=_errors(400, 401, 403, 404, 429),
    summary="AI/ML API: retrieve a video generation",
    openapi_extra=_SECURITY,
)
async def get_generation(
    vendor: Vendor,
    generation_id: GenerationId,
    runtime: RuntimeDep,
    auth: TaskReader,
    absolute: AbsoluteURL,
) -> AimlGeneration:
    """The generation's status (queued, generating, completed or error); when completed,
    video.url is the MP4 to download."""
    return await _poll(generation_id, runtime, auth, absolute)


@router.post(
    "/v2/video/generations",
    response_model=AimlGeneration,
    response_model_exclude_none=True,
    responses=_errors(400, 401, 403, 429, 503),
    summary="AI/ML API: create a video generation (universal URL)",
    openapi_extra=_SECURITY,
)
async def create_generation_universal(
    body: AimlVideoRequest,
    runtime: RuntimeDep,
    session: SessionDep,
    auth: VideoWriter,
) -> AimlGeneration:
    """AI/ML's vendor-less URL for the same call as POST /v2/generate/video/{vendor}/generation."""
    return await _submit(body, runtime, session, auth)


@router.get(
    "/v2/video/generations",
    response_model=AimlGeneration,
    response_model_exclude_none=True,
    responses=_errors(400, 401, 403, 404, 429),
    summary="AI/ML API: retrieve a video generation (universal URL)",
    openapi_extra=_SECURITY,
)
async def get_generation_universal(
    generation_id: GenerationId,
    runtime: RuntimeDep,
    auth: TaskReader,
    absolute: AbsoluteURL,
) -> AimlGeneration:
    """AI/ML's vendor-less URL for the same call as GET /v2/generate/video/{vendor}/generation."""
    return await _poll(generation_id, runtime, auth, absolute)
