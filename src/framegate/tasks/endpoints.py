"""Native generation and task routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse

from framegate.dependencies import (
    API_KEY_SCHEME,
    AbsoluteURL,
    ReadSessionDep,
    RuntimeDep,
    SessionDep,
    absolute_url_builder,
    authorize,
    require_scope,
)
from framegate.exceptions import BadRequest, InvalidValue, error_responses
from framegate.keys.scopes import Scope
from framegate.keys.service import AuthContext
from framegate.kit.pagination import PageAfter, PageLimit
from framegate.kit.time import parse_instant, to_unix
from framegate.models import Task, TaskStatus
from framegate.runtime import Runtime
from framegate.tasks.repository import TaskFilter
from framegate.tasks.schemas import (
    ImageData,
    ImageGenerationRequest,
    ImageGenerationResponse,
    TaskList,
    TaskObject,
    VideoGenerationRequest,
)
from framegate.tasks.service import GenerationFailed

router = APIRouter(tags=["tasks"])

VideoWriter = Annotated[AuthContext, Depends(require_scope(Scope.videos_write))]
ImageWriter = Annotated[AuthContext, Depends(require_scope(Scope.images_write))]
TaskReader = Annotated[AuthContext, Depends(require_scope(Scope.tasks_read))]
TaskId = Annotated[str, Path(max_length=40, description="The task id, e.g. task_…")]


@router.post(
    "/v1/async/videos/generations",
    status_code=202,
    response_model=TaskObject,
    responses=error_responses(400, 401, 402, 403, 413, 422, 503),
    summary="Submit a video generation task",
)
async def create_video_task(
    body: VideoGenerationRequest,
    runtime: RuntimeDep,
    session: SessionDep,
    auth: VideoWriter,
    absolute: AbsoluteURL,
) -> TaskObject:
    """Queue a text-to-video or image-to-video task; credits are held until it ends."""
    task = await runtime.tasks.submit_video(session, auth, body)
    return runtime.tasks.to_object(task, absolute)


@router.post(
    "/v1/videos/generations",
    responses=error_responses(400),
    summary="Synchronous video generation (not supported)",
    deprecated=True,
)
async def synchronous_video_generation() -> None:
    """Not supported: video generation is asynchronous; use POST /v1/async/videos/generations."""
    raise BadRequest(
        "Video generation is asynchronous: POST /v1/async/videos/generations, then poll "
        "GET /v1/tasks/{id} and read result.data[0].url.",
        code="use_async_endpoint",
    )


@router.post(
    "/v1/images/generations",
    response_model=ImageGenerationResponse,
    responses={
        202: {"model": TaskObject, "description": "Not ready in time: poll the task."},
        **error_responses(400, 401, 402, 403, 422, 502),
    },
    summary="Generate images",
)
async def create_images(
    body: ImageGenerationRequest,
    runtime: RuntimeDep,
    session: SessionDep,
    auth: ImageWriter,
    absolute: AbsoluteURL,
) -> ImageGenerationResponse | JSONResponse:
    """Generate images and answer with their URLs (or 202 with the task if it runs long)."""
    task = await runtime.tasks.submit_image(session, auth, body)
    # The task must be committed before waiting for a worker to run it.
    await session.commit()
    task = await runtime.tasks.wait_until_finished(
        task, runtime.settings.image_sync_timeout_seconds
    )
    if not TaskStatus(task.status).is_terminal():
        view = runtime.tasks.to_object(task, absolute)
        return JSONResponse(view.model_dump(mode="json"), status_code=202)
    if task.status != TaskStatus.completed:
        raise GenerationFailed(
            f"Image generation failed ({task.error_code}): {task.error_message}. "
            f"The credits were refunded. Task: {task.id}.",
            code=task.error_code or "generation_failed",
        )
    view = runtime.tasks.to_object(task, absolute)
    outputs = view.result.data if view.result else []
    return ImageGenerationResponse(
        created=to_unix(task.completed_at) or 0,
        data=[
            ImageData(url=o.url, width=o.width, height=o.height, thumbnail_url=o.thumbnail_url)
            for o in outputs
        ],
        task_id=task.id,
        model=task.model,
        credits_used=task.credits_used,
    )


@router.get(
    "/v1/tasks/{task_id}",
    response_model=TaskObject,
    responses=error_responses(401, 403, 404),
    summary="Retrieve a task",
    openapi_extra={"security": [{API_KEY_SCHEME: []}]},
)
async def get_task(task_id: TaskId, request: Request) -> Response:
    """The task's status and progress; when completed, the video URL is result.data[0].url."""
    # The hottest route: clients poll it. It authenticates inline rather than through
    # dependency injection, reads through the task cache and answers JSON rendered once
    # per change of the task.
    runtime: Runtime = request.app.state.runtime
    auth = await authorize(request, Scope.tasks_read)
    body = await runtime.tasks.render(auth.account.id, task_id, absolute_url_builder(request))
    return Response(body, media_type="application/json")


@router.get(
    "/v1/tasks",
    response_model=TaskList,
    responses=error_responses(401, 403, 422),
    summary="List tasks",
)
async def list_tasks(
    runtime: RuntimeDep,
    session: ReadSessionDep,
    auth: TaskReader,
    absolute: AbsoluteURL,
    limit: PageLimit = 20,
    after: PageAfter = None,
    status: Annotated[
        Literal["queued", "processing", "completed", "failed", "cancelled"] | None, Query()
    ] = None,
    model: Annotated[str | None, Query(max_length=120)] = None,
    type: Annotated[Literal["video.generation", "image.generation"] | None, Query()] = None,
    created_from: Annotated[
        str | None,
        Query(
            alias="from",
            max_length=40,
            description="Created at or after: ISO 8601 date or time (UTC), or Unix seconds",
        ),
    ] = None,
    created_to: Annotated[
        str | None,
        Query(
            alias="to",
            max_length=40,
            description="Created before (exclusive): ISO 8601 or Unix seconds",
        ),
    ] = None,
    metadata: Annotated[
        str | None,
        Query(
            max_length=600,
            description="A metadata tag and its value, as tag:value (e.g. campaign:spring)",
        ),
    ] = None,
) -> TaskList:
    """The account's tasks, newest first, with cursor pagination and filters."""
    tag = None
    if metadata is not None:
        key, colon, value = metadata.partition(":")
        if not colon or not key:
            raise InvalidValue(
                "metadata filters by one tag: send it as tag:value (e.g. campaign:spring).",
                param="metadata",
            )
        tag = (key, value)
    filters = TaskFilter(
        status=status,
        model=model,
        task_type=type,
        created_from=parse_instant(created_from, param="from") if created_from else None,
        created_to=parse_instant(created_to, param="to") if created_to else None,
        metadata=tag,
    )
    tasks, has_more = await runtime.tasks.list_tasks(
        session, auth.account.id, limit=limit, after=after, filters=filters
    )
    return TaskList(
        data=[runtime.tasks.to_object(t, absolute) for t in tasks],
        has_more=has_more,
        next_cursor=tasks[-1].id if has_more and tasks else None,
    )


@router.post(
    "/v1/tasks/{task_id}/cancel",
    response_model=TaskObject,
    responses=error_responses(401, 403, 404, 409),
    summary="Cancel a task",
)
async def cancel_task(
    task_id: TaskId,
    runtime: RuntimeDep,
    auth: TaskReader,
    absolute: AbsoluteURL,
) -> TaskObject:
    """Cancel a queued task at once, or a processing one at its engine's next step; the
    held credits are released either way. A finished task answers 409."""
    task = await runtime.tasks.get(auth.account.id, task_id)
    auth.require(Scope.videos_write if task.type == "video.generation" else Scope.images_write)
    cancelled = await runtime.tasks.cancel(auth.account.id, task_id)
    return runtime.tasks.to_object(cancelled, absolute)


_RANKS = {"queued": 0, "processing": 1}


def _event_id(task: Task) -> str:
    """Names a task state; a client resuming with it gets nothing until the state moves."""
    return f"{task.attempts}.{_RANKS.get(task.status, 2)}.{task.progress}"


@router.get(
    "/v1/tasks/{task_id}/events",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "A stream of task events"},
        **error_responses(401, 403, 404),
    },
    summary="Stream a task's progress (Server-Sent Events)",
)
async def task_events(
    task_id: TaskId,
    request: Request,
    runtime: RuntimeDep,
    auth: TaskReader,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    """`status` events when the status changes and `progress` events as it advances, each
    carrying the task object, until exactly one terminal `status` event (completed, failed
    or cancelled) ends the stream. Comment heartbeats keep idle connections open;
    reconnecting with `Last-Event-ID` resumes without repeating the last event."""
    await runtime.tasks.get(auth.account.id, task_id)
    absolute = absolute_url_builder(request)

    async def stream() -> AsyncIterator[dict[str, str]]:
        last_id, last_status = last_event_id, ""
        while True:
            task = await runtime.tasks.get(auth.account.id, task_id)
            event_id = _event_id(task)
            terminal = TaskStatus(task.status).is_terminal()
            if event_id != last_id:
                body = await runtime.tasks.render(auth.account.id, task_id, absolute)
                if _event_id(await runtime.tasks.get(auth.account.id, task_id)) != event_id:
                    # It changed while rendering: the body may show a later state than
                    # event_id says (a second terminal event). Start again from that state.
                    continue
                kind = "progress" if task.status == last_status else "status"
                yield {"event": kind, "id": event_id, "data": body.decode()}
                last_id, last_status = event_id, task.status
            if terminal:
                return
            # Woken at once by changes in this process (and, distributed, in any process);
            # otherwise re-read each second for changes made elsewhere.
            await runtime.signals.wait_for_change(task_id, runtime.signals.recheck_after(1.0))

    return EventSourceResponse(stream(), ping=runtime.settings.sse_ping_seconds)
