"""The routes of OpenAI's Videos API over the task service."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import re
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import ValidationError

from framegate.compat.base import SECURITY, TaskReader, VideoWriter
from framegate.compat.openai_videos.errors import (
    error_docs,
    in_dialect_terms,
)
from framegate.compat.openai_videos.schemas import (
    POLL_AFTER_MS,
    POLL_HEADER,
    OpenAIVideo,
    OpenAIVideoCreateRequest,
    OpenAIVideoDeleted,
    OpenAIVideoError,
    OpenAIVideoList,
    OpenAIVideoRemixRequest,
)
from framegate.dependencies import ReadSessionDep, RuntimeDep, SessionDep
from framegate.exceptions import BadRequest, Conflict, InvalidValue, NotFound
from framegate.keys.scopes import Scope
from framegate.keys.service import AuthContext
from framegate.kit.forms import read_form
from framegate.kit.images import image_media_type
from framegate.kit.time import to_unix
from framegate.kit.validation import from_validation
from framegate.models import Task, TaskStatus, TaskType
from framegate.runtime import Runtime
from framegate.tasks.schemas import VideoGenerationRequest
from framegate.tasks.service import CheckedVideo, TaskNotCancellable
from framegate.uploads.media import frame_grid
from framegate.uploads.schemas import UploadPurpose

router = APIRouter(tags=["compat: openai"])


# ---------------------------------------------------------------------------------------------
# Route documentation. The key comes as Authorization: Bearer (OpenAI's SDK), API-KEY or
# X-API-Key; VideoWriter and TaskReader (compat.base) check its scope.
# ---------------------------------------------------------------------------------------------


VideoId = Annotated[str, PathParam(max_length=40, description="The video id (a task id, task_…).")]


def _operation(
    summary: str,
    *statuses: int,
    ok: dict[str, Any] | None = None,
    request_body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A route's summary, its errors (in OpenAI's envelope), the key it takes and, where
    FastAPI cannot infer them, its success response (``ok``) and its body."""
    errors = error_docs(*statuses)
    body = {} if request_body is None else {"requestBody": request_body}
    return {
        "summary": f"{summary} (OpenAI Videos API)",
        "responses": errors if ok is None else {200: ok, **errors},
        "openapi_extra": {**body, **SECURITY},
    }


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
    response.headers[POLL_HEADER] = str(POLL_AFTER_MS if unfinished else 0)
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
    with in_dialect_terms():
        try:
            return VideoGenerationRequest(**fields)
        except ValidationError as exc:
            raise from_validation(exc.errors()) from None


async def _submit(
    runtime: Runtime,
    session: SessionDep,
    auth: AuthContext,
    body: VideoGenerationRequest | CheckedVideo,
) -> Task:
    with in_dialect_terms():
        return await runtime.tasks.submit_video(session, auth, body)


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


def _create_body() -> dict[str, Any]:
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
        "required": True,
        "content": {
            "application/json": {"schema": as_json},
            "multipart/form-data": {"schema": as_form},
        },
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
    request: Request, runtime: Runtime, session: SessionDep, auth: AuthContext
) -> VideoGenerationRequest | CheckedVideo:
    """The request of a multipart body. Its input_reference file is decoded and stored as
    an upload (in the request's transaction, with the task) only once the request has
    passed every check that costs no decode: plan, limits, credits."""
    async with AsyncExitStack() as scratch:
        with in_dialect_terms():
            form = await scratch.enter_async_context(
                read_form(runtime, request, file_field=_FILE_FIELD, file_required=False)
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
        with in_dialect_terms():
            checked = await runtime.tasks.check_video(auth, video)
            # Read here, not back through the database: the row is written with the task.
            checked.uploaded[form.upload_id] = await asyncio.to_thread(form.file.path.read_bytes)
            await runtime.uploads.store(
                session, auth.account.id, form, purpose=UploadPurpose.input_image
            )
    return checked


@router.post(
    "/v1/videos",
    **_operation("Create a video", 400, 401, 403, 429, 503, request_body=_create_body()),
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


@router.get("/v1/videos/{video_id}", **_operation("Retrieve a video", 401, 403, 404))
async def retrieve_video(
    video_id: VideoId, response: Response, runtime: RuntimeDep, auth: TaskReader
) -> OpenAIVideo:
    """The video's status and progress; poll it every `openai-poll-after-ms` milliseconds."""
    return _answer(response, await _video_task(runtime, auth, video_id))


@router.get("/v1/videos", **_operation("List videos", 400, 401, 403))
async def list_videos(
    runtime: RuntimeDep,
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
    tasks, has_more = await runtime.tasks.list_videos(
        session, auth.account.id, after=after, limit=limit, order=order
    )
    return OpenAIVideoList(
        data=[to_video(task) for task in tasks],
        first_id=tasks[0].id if tasks else None,
        last_id=tasks[-1].id if tasks else None,
        has_more=has_more,
    )


@router.delete("/v1/videos/{video_id}", **_operation("Delete a video", 401, 403, 404))
async def delete_video(
    video_id: VideoId, runtime: RuntimeDep, session: SessionDep, auth: TaskReader
) -> OpenAIVideoDeleted:
    """Cancel the video if it is unfinished (its held credits are released), then delete its
    stored files; the task stays in framegate's history (GET /v1/tasks/{id}) but is no longer
    listed or served here."""
    auth.require(Scope.videos_write)
    task = await _video_task(runtime, auth, video_id)
    if not TaskStatus(task.status).is_terminal():
        try:
            await runtime.tasks.cancel(auth.account.id, task.id)
        except TaskNotCancellable:
            pass  # it finished meanwhile: deleted all the same
        except NotFound:
            raise NotFound(
                f"No video {video_id!r}.", param="video_id", code="video_not_found"
            ) from None
    await runtime.tasks.purge_outputs(session, task)
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
_CONTENT = {
    "content": {"video/mp4": {}, _JPEG: {}},
    "description": "The MP4 (video) or a JPEG (thumbnail, spritesheet)",
}


async def _render_frames(runtime: Runtime, key: str, **grid: int) -> Response:
    try:
        async with runtime.tasks.local_copy(key) as source:
            data = await asyncio.to_thread(frame_grid, source, **grid)
    except FileNotFoundError:
        raise _content_gone() from None
    return Response(data, media_type=_JPEG, headers={"Cache-Control": "private, max-age=300"})


@router.get(
    "/v1/videos/{video_id}/content",
    response_class=Response,
    **_operation("Download a video's content", 400, 401, 403, 404, 409, ok=_CONTENT),
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
    try:
        source = await runtime.tasks.stored_file(key)
    except FileNotFoundError:
        raise _content_gone() from None
    if isinstance(source, Path):
        return FileResponse(source, media_type=media_type, headers=headers)
    headers["Content-Length"] = str(source.size)
    return StreamingResponse(source.chunks, media_type=media_type, headers=headers)


def _content_gone() -> NotFound:
    return NotFound("This video's content is no longer stored.", code="video_content_missing")


# ---------------------------------------------------------------------------------------------
# POST /v1/videos/{id}/remix: the source's parameters with a new prompt.
# ---------------------------------------------------------------------------------------------


async def _stored_image(runtime: Runtime, key: str | None) -> str | None:
    """A task's stored input image as a data URI (the original may have been a URL or an
    upload that is gone since)."""
    if not key:
        return None
    data = await runtime.tasks.stored_input(key)
    if data is None:
        raise NotFound(
            "The source video's input image is no longer stored; create a new video instead.",
            param="video_id",
            code="video_input_missing",
        )
    media_type = image_media_type(data) or "image/png"
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


@router.post(
    "/v1/videos/{video_id}/remix",
    **_operation("Remix a video", 400, 401, 403, 404, 429, 503),
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
