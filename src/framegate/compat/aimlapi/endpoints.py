"""AI/ML API's video routes over the task service."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Path, Query
from pydantic import ValidationError

from framegate.compat.aimlapi.errors import (
    error_docs,
)
from framegate.compat.aimlapi.schemas import (
    AimlGeneration,
    AimlGenerationError,
    AimlMeta,
    AimlUsage,
    AimlVideo,
    AimlVideoRequest,
)
from framegate.compat.base import SECURITY, TaskReader, VideoWriter
from framegate.dependencies import AbsoluteURL, RuntimeDep, SessionDep
from framegate.exceptions import BadRequest, InvalidValue, NotFound
from framegate.kit.validation import from_validation
from framegate.models import Task, TaskStatus, TaskType
from framegate.runtime import Runtime
from framegate.tasks.schemas import TaskObject, VideoGenerationRequest
from framegate.tasks.service import UPLOAD_ID_PREFIX

_TIER_RESOLUTIONS = frozenset({"480p", "720p", "1080p"})
_RESOLUTION_RE = re.compile(r"^(\d{3,4})p$")
_NAMED_RESOLUTIONS = {"2k": 1440, "4k": 2160}
_ASPECT_RE = re.compile(r"^(\d{1,3}):(\d{1,3})$")
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# AI/ML takes "a Base64-encoded local image" in image_url without a data: prefix.
_BARE_BASE64_RE = re.compile(r"^[A-Za-z0-9+/=_\-\s]{64,}$")


router = APIRouter(tags=["compat: aimlapi"])


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


# AI/ML serves each call on its vendor URL and again on its vendor-less universal URL; the
# vendor segment is checked and documented, and the model decides.
VENDOR_URL = "/v2/generate/video/{vendor}/generation"
UNIVERSAL_URL = "/v2/video/generations"


async def _vendor_segment(vendor: Vendor) -> None:
    """Validates and documents the {vendor} segment of VENDOR_URL."""


async def create_generation(
    body: AimlVideoRequest,
    runtime: RuntimeDep,
    session: SessionDep,
    auth: VideoWriter,
) -> AimlGeneration:
    """Queue a text-to-video (or, with image_url, image-to-video) generation; answers its id
    with status queued. Poll it with GET on the same URL and ?generation_id=."""
    native = to_native(body, runtime)
    task = await runtime.tasks.submit_video(session, auth, native)
    return AimlGeneration(
        id=task.id,
        generation_id=task.id,
        status=_STATUSES[task.status],
        meta=AimlMeta(usage=AimlUsage(credits_used=task.credits_reserved)),
    )


async def get_generation(
    generation_id: GenerationId,
    runtime: RuntimeDep,
    auth: TaskReader,
    absolute: AbsoluteURL,
) -> AimlGeneration:
    """The generation's status (queued, generating, completed or error); when completed,
    video.url is the MP4 to download."""
    task = await _find(runtime, auth.account.id, generation_id)
    return to_generation(runtime.tasks.to_object(task, absolute))


def _serve(
    method: str, endpoint: Callable[..., Awaitable[AimlGeneration]], action: str, *statuses: int
) -> None:
    """Route ``endpoint`` on both of AI/ML's URLs, as two documented operations."""
    shared: dict[str, Any] = {
        "methods": [method],
        "response_model": AimlGeneration,
        "response_model_exclude_none": True,
        "responses": error_docs(*statuses),
        "openapi_extra": SECURITY,
    }
    router.add_api_route(
        VENDOR_URL,
        endpoint,
        summary=f"AI/ML API: {action}",
        dependencies=[Depends(_vendor_segment)],
        **shared,
    )
    router.add_api_route(
        UNIVERSAL_URL,
        endpoint,
        name=f"{endpoint.__name__}_universal",
        summary=f"AI/ML API: {action} (universal URL)",
        description=f"AI/ML's vendor-less URL for the same call as {method} {VENDOR_URL}.",
        **shared,
    )


_serve("POST", create_generation, "create a video generation", 400, 401, 403, 429, 503)
_serve("GET", get_generation, "retrieve a video generation", 400, 401, 403, 404, 429)
