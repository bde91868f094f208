"""The OpenAI Videos API dialect (``/v1/videos``): client code written for OpenAI's Videos API
(the official ``openai`` SDK included) works against framegate with another base URL and a
framegate key.

A thin translation onto the task service, with no state of its own: a video is a framegate
video task (its id is the task id), OpenAI's model names resolve through the catalog (route
ids and aliases, e.g. an operator's alias ``sora-2``), ``seconds`` is the duration, ``size`` the
size and ``input_reference`` (a multipart file, an image URL or an upload id) the input image.
A remix is a new task with its source's parameters and a new prompt; the source is recorded in
the new task's metadata (``remixed_from_video_id``). Deleting a video cancels it if it is
unfinished and deletes its stored files, marking the task purged as the retention sweeper does;
a purged task is no longer a video here (not listed, 404), while ``GET /v1/tasks/{id}`` still
shows it.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import io
import json
import math
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import av
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from framegate.compat.base import authorize, dialect_route, error_param
from framegate.compat.fields import SecondsAsString, Size
from framegate.db import transaction
from framegate.dependencies import API_KEY_SCHEME, ReadSessionDep, RuntimeDep, SessionDep
from framegate.exceptions import BadRequest, Conflict, FramegateError, InvalidValue, NotFound
from framegate.keys.scopes import Scope
from framegate.keys.service import AuthContext
from framegate.kit.time import to_unix, utcnow
from framegate.kit.validation import from_validation
from framegate.models import Task, TaskStatus, TaskType
from framegate.models.task import TERMINAL_STATUSES
from framegate.runtime import Runtime
from framegate.storage.base import input_key, output_key
from framegate.tasks.repository import task_repository
from framegate.tasks.schemas import VideoGenerationRequest
from framegate.tasks.service import CheckedVideo
from framegate.uploads.schemas import UploadPurpose

# ---------------------------------------------------------------------------------------------
# Schemas: the request and response bodies of OpenAI's Videos API.
# ---------------------------------------------------------------------------------------------

DEFAULT_MODEL = "sora-2"
# How long OpenAI's SDK (create_and_poll, poll) waits before it polls an unfinished video.
POLL_AFTER_MS = 1000
_POLL_HEADER = "openai-poll-after-ms"


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


ERROR_MODEL = OpenAIErrorResponse


# ---------------------------------------------------------------------------------------------
# Errors: framegate's errors in OpenAI's envelope.
# ---------------------------------------------------------------------------------------------

# framegate's field names → this dialect's, for errors of the task and upload services.
_PARAM_NAMES = {
    "duration": "seconds",
    "num_frames": "seconds",
    "resolution": "size",
    "aspect_ratio": "size",
    "input_image": "input_reference",
    "file": "input_reference",
}
# framegate's error codes → OpenAI's, where OpenAI has its own; the others pass through.
_CODES = {
    "missing_parameter": "missing_required_parameter",
    "missing_api_key": "invalid_api_key",
    "invalid_authorization": "invalid_api_key",
    "revoked_api_key": "invalid_api_key",
    "account_disabled": "account_deactivated",
    "insufficient_credits": "insufficient_quota",
    "key_budget_exceeded": "insufficient_quota",
}
# Out of credits: OpenAI answers 429 insufficient_quota. Retrying cannot help, so its SDK is
# told not to (it retries every other 429).
_QUOTA_CODES = frozenset({"insufficient_credits", "key_budget_exceeded"})


@contextmanager
def _in_dialect_terms() -> Iterator[None]:
    """Errors of framegate's services name the dialect's field (seconds, not duration)."""
    try:
        yield
    except FramegateError as error:
        renamed = error_param(error, _PARAM_NAMES)
        if error.param and renamed and renamed != error.param:
            # "duration must be between 1 and 10 seconds…" → "seconds must be…"
            if error.message.startswith(f"{error.param} "):
                error.message = renamed + error.message.removeprefix(error.param)
            error.param = renamed
        raise


def render_error(request: Request, error: FramegateError) -> Response:
    """Any framegate error as ``{"error": {"message", "type", "param", "code"}}``."""
    status = error.status_code
    headers: dict[str, str] = {}
    if error.code in _QUOTA_CODES:
        status, kind = 429, "insufficient_quota"
        headers["x-should-retry"] = "false"
    elif status == 429:
        kind = "requests"
    elif status >= 500:
        kind = "server_error"
    else:
        # OpenAI uses invalid_request_error for every client error, 401 included, and 400
        # for every invalid field.
        kind = "invalid_request_error"
        status = 400 if status == 422 else status
    body = OpenAIErrorBody(
        message=error.message,
        type=kind,
        param=error.param,
        code=_CODES.get(error.code, error.code),
    )
    return JSONResponse({"error": body.model_dump()}, status_code=status, headers=headers)


router = APIRouter(route_class=dialect_route(render_error), tags=["compat: openai"])


def _error_docs(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Invalid request: a field has an invalid value (param names it)",
        401: "Missing, malformed or revoked API key",
        403: "The key lacks the scope this route needs",
        404: "No such video in this account (or deleted)",
        409: "The video is not completed (content) or a request is still running",
        429: "Rate or concurrency limit (Retry-After), or no credits (insufficient_quota)",
        503: "The model is failing upstream and has no healthy fallback (Retry-After)",
    }
    responses: dict[int | str, dict[str, Any]] = {
        status: {"description": descriptions[status], "model": OpenAIErrorResponse}
        for status in statuses
    }
    # Every other client error uses the same envelope (and stands in for FastAPI's 422:
    # this dialect answers invalid values with 400).
    responses["4XX"] = {"description": "Other client errors", "model": OpenAIErrorResponse}
    return responses


# ---------------------------------------------------------------------------------------------
# Authentication: Authorization: Bearer (OpenAI's SDK), API-KEY or X-API-Key.
# ---------------------------------------------------------------------------------------------


def _scoped(scope: str) -> Callable[[Request], Awaitable[AuthContext]]:
    async def dependency(request: Request) -> AuthContext:
        return await authorize(request, scope)

    return dependency


VideoWriter = Annotated[AuthContext, Depends(_scoped(Scope.videos_write))]
TaskReader = Annotated[AuthContext, Depends(_scoped(Scope.tasks_read))]
VideoId = Annotated[str, PathParam(max_length=40, description="The video id (a task id, task_…).")]
_SECURITY: dict[str, Any] = {"security": [{API_KEY_SCHEME: []}]}


# ---------------------------------------------------------------------------------------------
# Rendering framegate tasks as OpenAI videos.
# ---------------------------------------------------------------------------------------------

_STATUSES: dict[str, Literal["queued", "in_progress", "completed", "failed"]] = {
    TaskStatus.queued: "queued",
    TaskStatus.processing: "in_progress",
    TaskStatus.completed: "completed",
    TaskStatus.failed: "failed",
    # OpenAI has no cancelled status: a cancelled video is a failed one, code "cancelled".
    TaskStatus.cancelled: "failed",
}
REMIX_METADATA_KEY = "remixed_from_video_id"


def to_video(task: Task) -> OpenAIVideo:
    params = task.params
    error = None
    if task.status == TaskStatus.cancelled:
        error = OpenAIVideoError(
            code="cancelled", message="The video was cancelled; its credits were released."
        )
    elif task.error_code:
        error = OpenAIVideoError(code=task.error_code, message=task.error_message or "")
    return OpenAIVideo(
        id=task.id,
        model=task.model,
        status=_STATUSES[task.status],
        progress=task.progress,
        created_at=to_unix(task.created_at) or 0,
        completed_at=to_unix(task.completed_at),
        expires_at=to_unix(task.expires_at),
        prompt=params.get("prompt"),
        seconds=str(params.get("duration") or ""),
        size=str(params.get("size") or ""),
        error=error,
        remixed_from_video_id=(task.task_metadata or {}).get(REMIX_METADATA_KEY),
    )


def _answer(response: Response, task: Task) -> OpenAIVideo:
    """The video, with the poll interval OpenAI's SDK reads while it is unfinished."""
    unfinished = not TaskStatus(task.status).is_terminal()
    response.headers[_POLL_HEADER] = str(POLL_AFTER_MS if unfinished else 0)
    return to_video(task)


async def _video_task(runtime: Runtime, auth: AuthContext, video_id: str) -> Task:
    """This account's video task ``video_id``; a deleted (purged) one is no longer a video."""
    try:
        task = await runtime.tasks.get(auth.account.id, video_id)
    except NotFound:
        task = None
    if task is None or task.type != TaskType.video_generation or task.purged_at is not None:
        raise NotFound(f"No video {video_id!r}.", param="video_id", code="video_not_found")
    return task


def _video_request(fields: dict[str, Any]) -> VideoGenerationRequest:
    with _in_dialect_terms():
        try:
            return VideoGenerationRequest(**fields)
        except ValidationError as exc:
            raise from_validation(exc.errors()) from None


async def _submit(
    runtime: Runtime,
    session: AsyncSession,
    auth: AuthContext,
    body: VideoGenerationRequest | CheckedVideo,
) -> Task:
    with _in_dialect_terms():
        task = await runtime.tasks.submit_video(session, auth, body)
    await session.commit()
    runtime.signals.task_queued()
    return task


# ---------------------------------------------------------------------------------------------
# POST /v1/videos: JSON or multipart, read by the route itself.
# ---------------------------------------------------------------------------------------------

_FORM_KEY = re.compile(r"^(\w+)\[(\w+)\]$")
_FILE_FIELD = "input_reference"


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its ``$defs`` inlined, for ``openapi_extra``."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def _create_body_docs() -> dict[str, Any]:
    as_json = _inline_refs(OpenAIVideoCreateRequest.model_json_schema())
    as_form = copy.deepcopy(as_json)
    as_form.pop("examples", None)
    properties = as_form["properties"]
    properties[_FILE_FIELD] = {
        "type": "string",
        "format": "binary",
        "description": "The reference image (PNG, JPEG or WebP) as a file.",
    }
    # How OpenAI's SDKs put an object in a form: one field per key.
    for key in ("image_url", "file_id"):
        properties[f"{_FILE_FIELD}[{key}]"] = {
            "type": "string",
            "description": f"Instead of the file: input_reference's {key}.",
        }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": as_json},
                "multipart/form-data": {"schema": as_form},
            },
        },
        **_SECURITY,
    }


def _parse_create(data: Any) -> OpenAIVideoCreateRequest:
    try:
        return OpenAIVideoCreateRequest.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc.errors()) from None


def _nest_form(fields: dict[str, str]) -> dict[str, Any]:
    """Form fields as a request body: ``input_reference[image_url]`` (how OpenAI's SDK sends a
    nested object in a form) becomes ``{"input_reference": {"image_url": …}}``."""
    data: dict[str, Any] = {}
    for name, value in fields.items():
        match = _FORM_KEY.match(name)
        if match is None:
            data[name] = value
        else:
            data.setdefault(match[1], {})[match[2]] = value
    return data


def _create_fields(body: OpenAIVideoCreateRequest, image: str | None) -> dict[str, Any]:
    return {
        "model": body.model,
        "prompt": body.prompt,
        "duration": None if body.seconds is None else int(body.seconds),
        "size": body.size,
        "input_image": image,
    }


async def _read_json_create(request: Request) -> VideoGenerationRequest:
    """The request of a JSON body (its input image a URL, data URI or upload id)."""
    raw = await request.body()
    if not raw.strip():
        raise BadRequest(
            "The request needs a body: JSON or multipart/form-data with at least 'prompt'.",
            code="missing_body",
        )
    try:
        data = json.loads(raw)
    except ValueError:
        raise BadRequest("The body is not valid JSON.", code="invalid_json") from None
    body = _parse_create(data)
    reference = body.input_reference
    image = None if reference is None else reference.image_url or reference.file_id
    return _video_request(_create_fields(body, image))


async def _checked_form(
    request: Request, runtime: Runtime, session: AsyncSession, auth: AuthContext
) -> VideoGenerationRequest | CheckedVideo:
    """The request of a multipart body. Its input_reference file is decoded and stored as
    an upload (committed: the task service reads it back through its own session) only
    once the request has passed every check that costs no decode: plan, limits, credits."""
    async with AsyncExitStack() as scratch:
        with _in_dialect_terms():
            form = await scratch.enter_async_context(
                runtime.uploads.receive_form(
                    request.stream(),
                    content_type=request.headers.get("content-type"),
                    content_length=request.headers.get("content-length"),
                    file_field=_FILE_FIELD,
                    text_fields=None,
                    file_required=False,
                )
            )
        body = _parse_create(_nest_form(form.fields))
        reference = body.input_reference
        image = None if reference is None else reference.image_url or reference.file_id
        if form.upload_id is None:
            return _video_request(_create_fields(body, image))
        if reference is not None:
            raise InvalidValue(
                "Send input_reference either as a file or as image_url/file_id, not both.",
                param=_FILE_FIELD,
            )
        video = _video_request(_create_fields(body, form.upload_id))
        with _in_dialect_terms():
            checked = await runtime.tasks.check_video(auth, video)
            await runtime.uploads.store(
                session, auth.account.id, form, purpose=UploadPurpose.input_image
            )
    await session.commit()
    return checked


@router.post(
    "/v1/videos",
    response_model=OpenAIVideo,
    responses=_error_docs(400, 401, 403, 429, 503),
    summary="Create a video (OpenAI Videos API)",
    openapi_extra=_create_body_docs(),
)
async def create_video(
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    session: SessionDep,
    auth: VideoWriter,
) -> OpenAIVideo:
    """Queue a video: JSON, or multipart/form-data with the reference image as the
    `input_reference` file. `model` resolves through the catalog, `seconds` is the duration,
    `size` the size; the id is a framegate task id (also at GET /v1/tasks/{id})."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body: VideoGenerationRequest | CheckedVideo
    if media_type == "multipart/form-data":
        body = await _checked_form(request, runtime, session, auth)
    elif media_type in ("application/json", "") or media_type.endswith("+json"):
        body = await _read_json_create(request)
    else:
        raise BadRequest(
            f"Unsupported Content-Type {media_type!r}: send application/json or "
            "multipart/form-data.",
            code="unsupported_content_type",
        )
    task = await _submit(runtime, session, auth, body)
    return _answer(response, task)


# ---------------------------------------------------------------------------------------------
# Retrieve, list, delete.
# ---------------------------------------------------------------------------------------------


@router.get(
    "/v1/videos/{video_id}",
    response_model=OpenAIVideo,
    responses=_error_docs(401, 403, 404),
    summary="Retrieve a video (OpenAI Videos API)",
    openapi_extra=_SECURITY,
)
async def retrieve_video(
    video_id: VideoId, response: Response, runtime: RuntimeDep, auth: TaskReader
) -> OpenAIVideo:
    """The video's status and progress; poll it every `openai-poll-after-ms` milliseconds."""
    return _answer(response, await _video_task(runtime, auth, video_id))


async def _page_of_videos(
    session: AsyncSession,
    account_id: str,
    *,
    after: str | None,
    limit: int,
    order: Literal["asc", "desc"],
) -> tuple[list[Task], bool]:
    # TaskRepository.list_for_account pages newest first only and lists purged tasks; this
    # listing needs both orders and leaves deleted videos out. Ids begin with their creation
    # time, so id order is creation order (the (account_id, id) index serves it).
    statement = select(Task).where(
        Task.account_id == account_id,
        Task.type == TaskType.video_generation,
        Task.purged_at.is_(None),
    )
    if after:
        statement = statement.where(Task.id > after if order == "asc" else Task.id < after)
    statement = statement.order_by(Task.id.asc() if order == "asc" else Task.id.desc())
    rows = list((await session.execute(statement.limit(limit + 1))).scalars())
    return rows[:limit], len(rows) > limit


@router.get(
    "/v1/videos",
    response_model=OpenAIVideoList,
    responses=_error_docs(400, 401, 403),
    summary="List videos (OpenAI Videos API)",
    openapi_extra=_SECURITY,
)
async def list_videos(
    session: ReadSessionDep,
    auth: TaskReader,
    after: Annotated[
        str | None, Query(max_length=40, description="last_id of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
) -> OpenAIVideoList:
    """The account's videos (its video tasks, however submitted), newest first by default,
    with cursor pagination: pass `last_id` as `after`."""
    tasks, has_more = await _page_of_videos(
        session, auth.account.id, after=after, limit=limit, order=order
    )
    return OpenAIVideoList(
        data=[to_video(task) for task in tasks],
        first_id=tasks[0].id if tasks else None,
        last_id=tasks[-1].id if tasks else None,
        has_more=has_more,
    )


async def _delete_files(runtime: Runtime, task: Task) -> None:
    """What the retention sweeper does at the end of a task's retention, now: files first
    (a crash in between leaves files to delete again, never a purged task with files)."""
    now = utcnow()
    await runtime.storage.delete_prefix(output_key(task.id, ""))
    await runtime.storage.delete_prefix(input_key(task.id, ""))
    async with transaction(runtime.sessionmaker) as session:
        await task_repository.compare_and_set(
            session,
            task.id,
            status=tuple(TERMINAL_STATUSES),
            values={"purged_at": now, "expires_at": now, "updated_at": now},
        )
    runtime.signals.task_changed(task.id)


@router.delete(
    "/v1/videos/{video_id}",
    response_model=OpenAIVideoDeleted,
    responses=_error_docs(401, 403, 404),
    summary="Delete a video (OpenAI Videos API)",
    openapi_extra=_SECURITY,
)
async def delete_video(
    video_id: VideoId, runtime: RuntimeDep, auth: TaskReader
) -> OpenAIVideoDeleted:
    """Cancel the video if it is unfinished (its held credits are released), then delete its
    stored files; the task stays in framegate's history (GET /v1/tasks/{id}) but is no longer
    listed or served here."""
    auth.require(Scope.videos_write)
    task = await _video_task(runtime, auth, video_id)
    if not TaskStatus(task.status).is_terminal():
        cancelled = await runtime.lifecycle.cancel(auth.account.id, task.id)
        if cancelled is None:
            raise NotFound(f"No video {video_id!r}.", param="video_id", code="video_not_found")
        runtime.cancel_upstream(cancelled)
    await _delete_files(runtime, task)
    return OpenAIVideoDeleted(id=task.id)


# ---------------------------------------------------------------------------------------------
# GET /v1/videos/{id}/content: the MP4, its thumbnail, or a spritesheet made on the fly.
# ---------------------------------------------------------------------------------------------

Variant = Literal["video", "thumbnail", "spritesheet"]
SPRITESHEET_COLUMNS = 5
SPRITESHEET_FRAMES = 25
SPRITESHEET_TILE_WIDTH = 256
THUMBNAIL_MAX_WIDTH = 640
_JPEG = "image/jpeg"
_NOT_RETRIED = {"x-should-retry": "false"}


def _frame_grid(source: Path | io.BytesIO, *, count: int, columns: int, tile_width: int) -> bytes:
    """``count`` frames spread evenly over the clip, in a JPEG grid ``columns`` wide."""
    with av.open(str(source) if isinstance(source, Path) else source, mode="r") as container:
        stream = container.streams.video[0]
        total = stream.frames
        wanted = _spread(total, count) if total else None
        picked: list[Image.Image] = []
        for index, frame in enumerate(container.decode(stream)):
            if wanted is None or index in wanted:
                picked.append(_tile(frame.to_image(), tile_width))
            if wanted is not None and len(picked) == len(wanted):
                break
    if wanted is None:  # the container did not say how many frames: pick among all
        picked = [picked[i] for i in sorted(_spread(len(picked), count))]
    if not picked:
        raise ValueError("the video has no frames")
    columns = min(columns, len(picked))
    rows = math.ceil(len(picked) / columns)
    width, height = picked[0].size
    sheet = Image.new("RGB", (columns * width, rows * height))
    for position, tile in enumerate(picked):
        sheet.paste(tile, ((position % columns) * width, (position // columns) * height))
    buffer = io.BytesIO()
    sheet.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _spread(total: int, count: int) -> set[int]:
    if total <= count:
        return set(range(total))
    return {round(i * (total - 1) / (count - 1)) for i in range(count)} if count > 1 else {0}


def _tile(image: Image.Image, width: int) -> Image.Image:
    if image.width <= width:
        return image.convert("RGB")
    height = max(2, round(image.height * width / image.width))
    return image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR)


async def _source(runtime: Runtime, key: str) -> Path | io.BytesIO:
    try:
        path = runtime.storage.local_path(key)
    except ValueError:
        path = None
    if path is not None:
        return path
    return io.BytesIO(await runtime.storage.get_bytes(key))


async def _render_frames(runtime: Runtime, key: str, **grid: int) -> Response:
    source = await _source(runtime, key)
    data = await asyncio.to_thread(_frame_grid, source, **grid)
    return Response(data, media_type=_JPEG, headers={"Cache-Control": "private, max-age=300"})


@router.get(
    "/v1/videos/{video_id}/content",
    response_class=Response,
    responses={
        200: {
            "content": {"video/mp4": {}, _JPEG: {}},
            "description": "The MP4 (video) or a JPEG (thumbnail, spritesheet)",
        },
        **_error_docs(400, 401, 403, 404, 409),
    },
    summary="Download a video's content (OpenAI Videos API)",
    openapi_extra=_SECURITY,
)
async def download_video_content(
    video_id: VideoId,
    runtime: RuntimeDep,
    auth: TaskReader,
    variant: Annotated[Variant, Query()] = "video",
) -> Response:
    """The completed video's MP4 (`variant=video`), its thumbnail (JPEG) or a spritesheet: a
    JPEG grid of up to 25 frames spread over the clip, made from the MP4 on request."""
    task = await _video_task(runtime, auth, video_id)
    if task.status != TaskStatus.completed:
        finished = TaskStatus(task.status).is_terminal()
        raise Conflict(
            f"Video {video_id} is {to_video(task).status}; only a completed video has content.",
            code="video_failed" if finished else "video_not_ready",
            headers=_NOT_RETRIED,
        )
    outputs = (task.result or {}).get("outputs") or []
    if not outputs:
        raise NotFound(f"Video {video_id} has no stored output.", code="video_content_missing")
    output = outputs[0]
    if variant == "spritesheet":
        return await _render_frames(
            runtime,
            output["key"],
            count=SPRITESHEET_FRAMES,
            columns=SPRITESHEET_COLUMNS,
            tile_width=SPRITESHEET_TILE_WIDTH,
        )
    key = output["key"]
    media_type = output.get("content_type", "video/mp4")
    if variant == "thumbnail":
        if not output.get("thumbnail_key"):  # engines without thumbnails: the first frame
            return await _render_frames(
                runtime, key, count=1, columns=1, tile_width=THUMBNAIL_MAX_WIDTH
            )
        key, media_type = output["thumbnail_key"], _JPEG
    headers = {"Cache-Control": "private, max-age=300"}
    source = await _source(runtime, key)
    if isinstance(source, Path):
        return FileResponse(source, media_type=media_type, headers=headers)
    return Response(source.getvalue(), media_type=media_type, headers=headers)


# ---------------------------------------------------------------------------------------------
# POST /v1/videos/{id}/remix: the source's parameters with a new prompt.
# ---------------------------------------------------------------------------------------------

_IMAGE_TYPES = ((b"\x89PNG", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"RIFF", "image/webp"))


async def _stored_image(runtime: Runtime, key: str | None) -> str | None:
    """A task's stored input image as a data URI (the original may have been a URL or an
    upload that is gone since)."""
    if not key:
        return None
    if not await runtime.storage.exists(key):
        raise NotFound(
            "The source video's input image is no longer stored; create a new video instead.",
            param="video_id",
            code="video_input_missing",
        )
    data = await runtime.storage.get_bytes(key)
    media_type = next((t for magic, t in _IMAGE_TYPES if data.startswith(magic)), "image/png")
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


@router.post(
    "/v1/videos/{video_id}/remix",
    response_model=OpenAIVideo,
    responses=_error_docs(400, 401, 403, 404, 429, 503),
    summary="Remix a video (OpenAI Videos API)",
    openapi_extra=_SECURITY,
)
async def remix_video(
    video_id: VideoId,
    body: OpenAIVideoRemixRequest,
    response: Response,
    runtime: RuntimeDep,
    session: SessionDep,
    auth: VideoWriter,
) -> OpenAIVideo:
    """A new video with the source video's model, length, size, seed and input images and a
    new prompt; `remixed_from_video_id` names the source."""
    auth.require(Scope.tasks_read)
    source = await _video_task(runtime, auth, video_id)
    params = source.params
    fields: dict[str, Any] = {
        "model": source.model,
        "prompt": body.prompt,
        # The exact frame count at the same rate: the same clip length whichever way the
        # source asked for it.
        "num_frames": params.get("num_frames"),
        "fps": params.get("fps"),
        "size": params.get("size"),
        "negative_prompt": params.get("negative_prompt"),
        "seed": params.get("seed"),
        "camera_fixed": bool(params.get("camera_fixed")),
        "input_image": await _stored_image(runtime, params.get("input_image_key")),
        "last_image": await _stored_image(runtime, params.get("last_image_key")),
        "metadata": {REMIX_METADATA_KEY: source.id},
    }
    task = await _submit(runtime, session, auth, _video_request(fields))
    return _answer(response, task)
