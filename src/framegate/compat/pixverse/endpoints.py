"""PixVerse's routes over the task, upload and credit services."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Request
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ValidationError

from framegate.compat.base import authorize
from framegate.compat.pixverse.errors import (
    ERROR_RESPONSES,
    OK_WITH_ERRCODES,
)
from framegate.compat.pixverse.schemas import (
    MAX_ALIAS,
    MAX_PROMPT,
    MAX_SEED,
    MODERATION_CODES,
    PREFIX,
    RATIOS,
    STATUS_FAILED,
    STATUS_GENERATING,
    STATUS_MODERATED,
    STATUS_SUCCEEDED,
    UNSUPPORTED_FIELDS,
    GenerateFields,
    PixVerseBalance,
    PixVerseBalanceResponse,
    PixVerseErrorEnvelope,
    PixVerseGenerateResponse,
    PixVerseImageToVideoRequest,
    PixVerseResultResponse,
    PixVerseTextToVideoRequest,
    PixVerseUploadedImage,
    PixVerseUploadResponse,
    PixVerseVideoId,
    PixVerseVideoResult,
    VideoStatus,
    pixverse_size,
)
from framegate.credits.service import credit_service
from framegate.dependencies import AbsoluteURL, ReadSessionDep, RuntimeDep, SessionDep
from framegate.exceptions import BadRequest, FramegateError, InvalidValue, NotFound
from framegate.keys.scopes import Scope
from framegate.keys.service import AuthContext
from framegate.kit.forms import multipart_body
from framegate.kit.validation import first_error, from_validation
from framegate.models import Task, TaskStatus, TaskType
from framegate.runtime import Runtime
from framegate.tasks.schemas import TaskObject, VideoGenerationRequest
from framegate.uploads.schemas import UploadKind, UploadPurpose

router = APIRouter(tags=["compat: pixverse"])

# Documents the key header in OpenAPI; the key itself is read by compat.base.authorize.
_api_key = APIKeyHeader(
    name="API-KEY",
    scheme_name="PixVerseAPIKey",
    description="A framegate API key, sent as PixVerse sends its keys.",
    auto_error=False,
)
ApiKeyDoc = Annotated[str | None, Depends(_api_key)]


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """openapi_extra for a route that reads its JSON body itself."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


def _answers(model: type[BaseModel], errcodes: str) -> dict[str, Any]:
    """A route's responses: ``model`` on success, else PixVerse's error envelope, answered
    HTTP 200 for ``errcodes``."""
    return {
        "response_model": model | PixVerseErrorEnvelope,
        "responses": {200: {"description": OK_WITH_ERRCODES + errcodes}, **ERROR_RESPONSES},
    }


_IMAGE_DESCRIPTION = "PNG, JPEG or WebP (20 MB by default: FRAMEGATE_UPLOAD_IMAGE_MAX_BYTES)."
_IMAGE_FORM = multipart_body(
    ["image"], {"image": {"type": "string", "format": "binary", "description": _IMAGE_DESCRIPTION}}
)


# -- helpers -------------------------------------------------------------------------------

_Body = TypeVar("_Body", bound=BaseModel)


async def _read_json(request: Request, model: type[_Body]) -> _Body:
    """The body as ``model``; errors classified as PixVerse classifies them."""
    raw = await request.body()
    if not raw.strip():
        raise BadRequest("the request needs a JSON body.", code="missing_body")
    try:
        data = json.loads(raw)
    except ValueError:
        raise BadRequest("the body is not valid JSON.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object.", code="invalid_json")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(exc) from None


def _validation_error(exc: ValidationError) -> FramegateError:
    errors = exc.errors()
    first = first_error(errors)
    param, kind = first.param, first.kind
    if kind == "string_too_long" and param in ("prompt", "negative_prompt"):
        return first.invalid(
            f"{param} is longer than {MAX_PROMPT} characters.", code="prompt_too_long"
        )
    if kind == "string_too_short":
        return first.invalid(f"{param} is empty.", code="missing_parameter")
    if kind.endswith(("_type", "_parsing")) or kind == "int_from_float":
        return first.invalid(f"{param}: {first.message}.", code="invalid_type")
    return from_validation(errors)


def _check_supported(body: GenerateFields) -> None:
    for name in UNSUPPORTED_FIELDS:
        if getattr(body, name) not in (None, "", False, 0):
            raise InvalidValue(
                f"{name} is not supported by framegate's PixVerse API; leave it out.",
                param=name,
                code="unsupported_parameter",
            )
    if body.motion_mode != "normal":
        raise InvalidValue(
            "only motion_mode 'normal' is supported; leave it out or send 'normal'.",
            param="motion_mode",
        )
    if body.water_mark:
        raise InvalidValue(
            "framegate adds no watermark; send water_mark false.", param="water_mark"
        )


def _model_name(runtime: Runtime, model: str) -> str:
    """A catalog name as is; else PixVerse's version as the built-in route's id."""
    catalog = runtime.catalog
    if catalog.get(model) is None and catalog.get(f"pixverse-{model}") is not None:
        return f"pixverse-{model}"
    return model


def _closest_ratio(width: int | None, height: int | None) -> str:
    if not width or not height:
        return "16:9"
    wanted = width / height
    return min(RATIOS, key=lambda ratio: abs(RATIOS[ratio] / wanted - 1))


def _video_request(
    runtime: Runtime,
    body: GenerateFields,
    *,
    aspect_ratio: str,
    input_image: str | None,
) -> VideoGenerationRequest:
    _check_supported(body)
    try:
        return VideoGenerationRequest(
            model=_model_name(runtime, body.model),
            prompt=body.prompt,
            duration=body.duration,
            size=pixverse_size(body.quality, aspect_ratio),
            input_image=input_image,
            negative_prompt=body.negative_prompt or None,
            # Drawn here when absent, so the seed the result reports is in PixVerse's range.
            seed=secrets.randbelow(MAX_SEED + 1) if body.seed is None else body.seed,
        )
    except ValidationError as exc:
        raise from_validation(exc.errors()) from None


async def _submit(
    runtime: Runtime, session: SessionDep, auth: AuthContext, video: VideoGenerationRequest
) -> PixVerseGenerateResponse:
    task = await runtime.tasks.submit_video(session, auth, video)
    return PixVerseGenerateResponse(Resp=PixVerseVideoId(video_id=_alias(task.number)))


def _alias(number: int | None) -> int:
    if number is None:  # rows from before integer aliases existed
        raise NotFound("This object has no integer id.", code="not_found")
    return number


def _timestamp(unix: int | None) -> str:
    return datetime.fromtimestamp(unix or 0, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(view: TaskObject) -> VideoStatus:
    if view.status == TaskStatus.completed:
        return STATUS_SUCCEEDED
    if view.status in (TaskStatus.queued, TaskStatus.processing):
        return STATUS_GENERATING
    if view.error is not None and view.error.code in MODERATION_CODES:
        return STATUS_MODERATED
    return STATUS_FAILED


def _result(task: Task, view: TaskObject) -> PixVerseVideoResult:
    params = view.input
    width, height = int(params.get("width") or 0), int(params.get("height") or 0)
    url, size = "", 0
    outputs = view.result.data if view.result is not None else []
    if view.status == TaskStatus.completed and outputs:
        url, width, height = outputs[0].url, outputs[0].width, outputs[0].height
        stored = (task.result or {}).get("outputs") or [{}]
        size = int(stored[0].get("bytes") or 0)
    changed = view.completed_at or view.started_at or view.created_at
    return PixVerseVideoResult(
        id=_alias(task.number),
        status=_status(view),
        url=url,
        prompt=str(params.get("prompt") or ""),
        negative_prompt=str(params.get("negative_prompt") or ""),
        seed=int(params.get("seed") or 0),
        outputWidth=width,
        outputHeight=height,
        resolution_ratio=min(width, height),
        size=size,
        create_time=_timestamp(view.created_at),
        modify_time=_timestamp(changed),
    )


def account_number(account_id: str) -> int:
    """PixVerse's integer account_id: a stable 48-bit number derived from framegate's id."""
    return int.from_bytes(hashlib.sha256(account_id.encode()).digest()[:6], "big")


# -- routes --------------------------------------------------------------------------------


@router.post(
    f"{PREFIX}/video/text/generate",
    **_answers(PixVerseGenerateResponse, "400011, 400013, 400017, 400018, 500090."),
    summary="PixVerse: text-to-video generation",
    openapi_extra=_json_body(PixVerseTextToVideoRequest),
)
async def text_to_video(
    request: Request, runtime: RuntimeDep, session: SessionDep, _key: ApiKeyDoc
) -> PixVerseGenerateResponse:
    """Queue a text-to-video task; answers its `video_id`. quality + aspect_ratio pick the
    size (540p 16:9 is 960x540); credits are held until it ends. A repeated `Ai-trace-id`
    with the same body answers the first `video_id` again and holds nothing more."""
    auth = await authorize(request, Scope.videos_write.value)
    body = await _read_json(request, PixVerseTextToVideoRequest)
    video = _video_request(runtime, body, aspect_ratio=body.aspect_ratio, input_image=None)
    return await _submit(runtime, session, auth, video)


@router.post(
    f"{PREFIX}/video/img/generate",
    **_answers(PixVerseGenerateResponse, "400011, 400013, 400017, 400018, 400032, 500090."),
    summary="PixVerse: image-to-video generation",
    openapi_extra=_json_body(PixVerseImageToVideoRequest),
)
async def image_to_video(
    request: Request, runtime: RuntimeDep, session: SessionDep, _key: ApiKeyDoc
) -> PixVerseGenerateResponse:
    """Queue an image-to-video task from an uploaded image (`img_id`); answers its
    `video_id`. The clip takes the aspect ratio (of PixVerse's five) closest to the image's,
    at the requested quality."""
    auth = await authorize(request, Scope.videos_write.value)
    body = await _read_json(request, PixVerseImageToVideoRequest)
    invalid = InvalidValue(
        f"no image {body.img_id} in this account; upload it with POST {PREFIX}/image/upload.",
        param="img_id",
        code="invalid_image_id",
    )
    if not 0 < body.img_id < MAX_ALIAS:
        raise invalid
    try:
        upload = await runtime.uploads.get_by_number(session, auth.account.id, body.img_id)
    except NotFound:
        raise invalid from None
    if upload.kind != UploadKind.image:
        raise invalid
    ratio = _closest_ratio(upload.width, upload.height)
    video = _video_request(runtime, body, aspect_ratio=ratio, input_image=upload.id)
    return await _submit(runtime, session, auth, video)


@router.post(
    f"{PREFIX}/image/upload",
    **_answers(PixVerseUploadResponse, "400011, 400013, 400017, 500030, 500031, 500032."),
    summary="PixVerse: upload an image",
    openapi_extra=_IMAGE_FORM,
)
async def upload_image(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    absolute: AbsoluteURL,
    _key: ApiKeyDoc,
) -> PixVerseUploadResponse:
    """Store an image (multipart field `image`) as a framegate upload; its `img_id` is the
    first frame of /openapi/v2/video/img/generate."""
    auth = await authorize(request, Scope.videos_write.value)
    try:
        upload, fields = await runtime.uploads.create_from_form(
            session,
            auth.account.id,
            request.stream(),
            content_type=request.headers.get("content-type"),
            content_length=request.headers.get("content-length"),
            file_field="image",
            text_fields=frozenset({"image_url"}),
            file_required=False,
            purpose=UploadPurpose.input_image,
        )
    except BadRequest as exc:
        if exc.code not in ("not_multipart", "invalid_multipart"):
            raise
        # The shared hint names the native upload's field ("file").
        raise BadRequest(
            "Send the image as multipart/form-data in the field image (curl -F image=@frame.png).",
            code=exc.code,
        ) from None
    if upload is None:
        if fields.get("image_url"):
            raise InvalidValue(
                "image_url is not supported: send the image file as the multipart field image.",
                param="image_url",
                code="unsupported_parameter",
            )
        raise InvalidValue(
            "image is required: send the file as the multipart field image.",
            param="image",
            code="missing_parameter",
        )
    url = runtime.links.url(upload.key, absolute)
    return PixVerseUploadResponse(
        Resp=PixVerseUploadedImage(img_id=_alias(upload.number), img_url=url)
    )


@router.get(
    f"{PREFIX}/video/result/{{video_id}}",
    **_answers(PixVerseResultResponse, "400017, 500008."),
    summary="PixVerse: get video generation status",
)
async def video_result(
    video_id: Annotated[int, Path(ge=0, lt=MAX_ALIAS, description="From the generate call.")],
    request: Request,
    runtime: RuntimeDep,
    absolute: AbsoluteURL,
    _key: ApiKeyDoc,
) -> PixVerseResultResponse:
    """The video's status (1 done, 5 generating, 7 moderation, 8 failed) and, when done,
    its `url`. The same task is GET /v1/tasks/{id} in the native API."""
    auth = await authorize(request, Scope.tasks_read.value)
    task = await runtime.tasks.get_by_number(auth.account.id, video_id)
    if task.type != TaskType.video_generation:
        raise NotFound(f"No video {video_id}.", param="video_id", code="task_not_found")
    view = runtime.tasks.to_object(task, absolute)
    return PixVerseResultResponse(Resp=_result(task, view))


@router.get(
    f"{PREFIX}/account/balance",
    **_answers(PixVerseBalanceResponse, "400017."),
    summary="PixVerse: get user credit balance",
)
async def account_balance(
    request: Request, session: ReadSessionDep, _key: ApiKeyDoc
) -> PixVerseBalanceResponse:
    """The account's available framegate credits as `credit_package` (`credit_monthly` is
    always 0); credits held by unfinished tasks are not included."""
    auth = await authorize(request, Scope.credits_read.value)
    balance = await credit_service.balance(session, auth.account.id)
    return PixVerseBalanceResponse(
        Resp=PixVerseBalance(
            account_id=account_number(auth.account.id),
            credit_monthly=0,
            credit_package=balance.available,
        )
    )
