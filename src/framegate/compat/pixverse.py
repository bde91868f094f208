"""The PixVerse Platform API dialect (``/openapi/v2/...``).

Client code written for PixVerse works against framegate by changing the base URL and the
key: the key travels in ``API-KEY``, ``Ai-trace-id`` is the idempotency key (an alias the
idempotency middleware reads), every answer is ``{"ErrCode", "ErrMsg", "Resp"}`` and, as on
PixVerse, a refused request is answered HTTP 200 with its ErrCode, except for the errors
a client must handle at the HTTP level (401 invalid key, 403 missing scope, 405 a method
the path does not have, 429 limits with Retry-After, 5xx), which keep their status.

A thin translation onto the task and upload services: PixVerse's integer ids are the
integer aliases framegate gives every task (``video_id`` = ``task.number``) and upload
(``img_id`` = ``upload.number``); nothing is stored here. ``quality`` + ``aspect_ratio``
become the output size PixVerse renders for them (image-to-video takes the aspect ratio
closest to the uploaded image's, as PixVerse follows the image), and ``model`` names a
catalog route or alias (``v5`` falls back to the built-in ``pixverse-v5`` route).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from framegate.compat.base import authorize, dialect_route, error_param
from framegate.credits.service import credit_service
from framegate.dependencies import AbsoluteURL, ReadSessionDep, RuntimeDep, get_session
from framegate.engines.vendors.base import MODERATION_BLOCKED
from framegate.engines.vendors.pixverse import PIXVERSE_SIZES
from framegate.exceptions import BadRequest, FramegateError, InvalidValue, NotFound
from framegate.keys.scopes import Scope
from framegate.keys.service import AuthContext
from framegate.kit.validation import from_validation
from framegate.models import Task, TaskStatus, TaskType
from framegate.runtime import Runtime
from framegate.tasks.schemas import TaskObject, VideoGenerationRequest
from framegate.uploads.schemas import UploadKind, UploadPurpose

PREFIX = "/openapi/v2"
# PixVerse's clients send their idempotency key in this header (the idempotency middleware
# reads it as Idempotency-Key).
IDEMPOTENCY_HEADER = "Ai-trace-id"

Quality = Literal["360p", "540p", "720p", "1080p"]
AspectRatio = Literal["16:9", "4:3", "1:1", "3:4", "9:16"]
# (quality, aspect_ratio) -> the "WxH" PixVerse renders for them.
SIZES: dict[tuple[str, str], str] = {pair: size for size, pair in PIXVERSE_SIZES.items()}
_RATIOS: dict[str, float] = {"16:9": 16 / 9, "4:3": 4 / 3, "1:1": 1.0, "3:4": 3 / 4, "9:16": 9 / 16}
MAX_PROMPT = 2048
MAX_SEED = 2**31 - 1
# Tasks' and uploads' integer aliases are below 2**53.
MAX_ALIAS = 2**53

# Resp.status of a video.
VideoStatus = Literal[1, 5, 7, 8]
STATUS_SUCCEEDED: Final = 1
STATUS_GENERATING: Final = 5
STATUS_MODERATED: Final = 7
STATUS_FAILED: Final = 8
# Task error codes that PixVerse reports as a moderation failure (status 7).
MODERATION_CODES = frozenset({MODERATION_BLOCKED})

# PixVerse's documented ErrCodes (Trouble Shooting > Error codes) that framegate answers.
ERR_OK = 0
ERR_EMPTY_PARAMETER = 400011
ERR_INVALID_KEY = 400012
ERR_INVALID_BINDING = 400013
ERR_INVALID_PARAMETER = 400017
ERR_PROMPT_TOO_LONG = 400018
ERR_INVALID_IMAGE_ID = 400032
ERR_NOT_FOUND = 500008
ERR_NO_PERMISSION = 500020
ERR_IMAGE_TOO_LARGE = 500030
ERR_IMAGE_UNREADABLE = 500031
ERR_IMAGE_FORMAT = 500032
ERR_CONCURRENCY = 500044
ERR_HIGH_LOAD = 500069
ERR_BALANCE = 500090
ERR_UNKNOWN = 99999

ERR_MESSAGES: dict[int, str] = {
    ERR_EMPTY_PARAMETER: "Empty parameter",
    ERR_INVALID_KEY: "Invalid API-KEY",
    ERR_INVALID_BINDING: "Invalid binding request: incorrect parameter type or value",
    ERR_INVALID_PARAMETER: "Invalid parameter",
    ERR_PROMPT_TOO_LONG: "Prompt/negative prompt length exceeds 2048 characters",
    ERR_INVALID_IMAGE_ID: "Invalid image ID",
    ERR_NOT_FOUND: "Requested data not found",
    ERR_NO_PERMISSION: "No permission for this operation",
    ERR_IMAGE_TOO_LARGE: "Image size exceeds the limit",
    ERR_IMAGE_UNREADABLE: "Failed to retrieve image information",
    ERR_IMAGE_FORMAT: "Invalid image format",
    ERR_CONCURRENCY: "Reached the limit for concurrent generations",
    ERR_HIGH_LOAD: "System is currently experiencing high load",
    ERR_BALANCE: "Insufficient balance",
    ERR_UNKNOWN: "Unknown error",
}

# By HTTP status first: every 401 is a bad key, every 402 a balance problem...
_ERR_BY_STATUS: dict[int, int] = {
    401: ERR_INVALID_KEY,
    402: ERR_BALANCE,
    403: ERR_NO_PERMISSION,
    429: ERR_CONCURRENCY,
    503: ERR_HIGH_LOAD,
}
# ...then by framegate's error code...
_ERR_BY_CODE: dict[str, int] = {
    "missing_body": ERR_EMPTY_PARAMETER,
    "missing_parameter": ERR_EMPTY_PARAMETER,
    "invalid_json": ERR_INVALID_BINDING,
    "invalid_type": ERR_INVALID_BINDING,
    "not_multipart": ERR_INVALID_BINDING,
    "invalid_multipart": ERR_INVALID_BINDING,
    "too_many_files": ERR_INVALID_BINDING,
    "prompt_too_long": ERR_PROMPT_TOO_LONG,
    "invalid_image_id": ERR_INVALID_IMAGE_ID,
    "upload_not_found": ERR_INVALID_IMAGE_ID,
    "upload_deleted": ERR_INVALID_IMAGE_ID,
    "upload_expired": ERR_INVALID_IMAGE_ID,
    "upload_not_image": ERR_INVALID_IMAGE_ID,
    "file_too_large": ERR_IMAGE_TOO_LARGE,
    "image_too_large": ERR_IMAGE_TOO_LARGE,
    "input_too_large": ERR_IMAGE_TOO_LARGE,
    "empty_file": ERR_IMAGE_UNREADABLE,
    "invalid_image": ERR_IMAGE_UNREADABLE,
    "unsupported_media": ERR_IMAGE_FORMAT,
    "unsupported_image": ERR_IMAGE_FORMAT,
    "wrong_media_kind": ERR_IMAGE_FORMAT,
}
# ...then by the remaining statuses; any other 4xx is an invalid parameter.
_ERR_BY_OTHER_STATUS: dict[int, int] = {
    404: ERR_NOT_FOUND,
    410: ERR_NOT_FOUND,
    413: ERR_IMAGE_TOO_LARGE,
}
# Statuses kept as they are; every other error is answered HTTP 200, as PixVerse does. A
# method the path does not have (405, with Allow) is an HTTP mistake, not a refused call.
_KEPT_STATUSES = frozenset({401, 403, 405, 429})

# framegate's field names -> the dialect's, in ErrMsg.
_RENAMES: Mapping[str, str] = {
    "input_image": "img_id",
    "upload_id": "img_id",
    "file": "image",
    "size": "quality",
    "resolution": "quality",
    "num_frames": "duration",
    "task_id": "video_id",
}


def err_code_for(error: FramegateError) -> int:
    """The PixVerse ErrCode that stands for a framegate error."""
    status = error.status_code
    return (
        _ERR_BY_STATUS.get(status)
        or _ERR_BY_CODE.get(error.code)
        or _ERR_BY_OTHER_STATUS.get(status)
        or (ERR_UNKNOWN if status >= 500 else ERR_INVALID_PARAMETER)
    )


def render_error(request: Request, error: FramegateError) -> Response:
    """A framegate error in PixVerse's envelope: ``{"ErrCode", "ErrMsg", "Resp": null}``."""
    code = err_code_for(error)
    param = error_param(error, _RENAMES)
    label = ERR_MESSAGES[code]
    # The field is named when the message does not already name it (framegate's own
    # messages may name it as framegate does: "size" for quality).
    named = param is None or error.message.startswith(param)
    message = f"{label}: {error.message}" if named else f"{label} ({param}): {error.message}"
    status = error.status_code
    http_status = status if status in _KEPT_STATUSES or status >= 500 else 200
    return JSONResponse({"ErrCode": code, "ErrMsg": message, "Resp": None}, http_status)


router = APIRouter(route_class=dialect_route(render_error), tags=["compat: pixverse"])

# Documents the key header in OpenAPI; the key itself is read by compat.base.authorize.
_api_key = APIKeyHeader(
    name="API-KEY",
    scheme_name="PixVerseAPIKey",
    description="A framegate API key, sent as PixVerse sends its keys.",
    auto_error=False,
)
ApiKeyDoc = Annotated[str | None, Depends(_api_key)]
# The write session is closed as soon as the route returns, before the response is sent:
# an error is rendered inside the route (not raised through the dependencies), and an open
# SQLite write transaction would block whatever runs while the response goes out (the
# idempotency middleware stores the response then).
WriteSession = Annotated[AsyncSession, Depends(get_session, scope="function")]


# -- schemas -------------------------------------------------------------------------------


class _GenerateFields(BaseModel):
    """What text- and image-to-video requests share. Strict: a wrong JSON type is
    ErrCode 400013, as on PixVerse."""

    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT)
    model: str = Field(
        min_length=1,
        max_length=120,
        description="PixVerse model version (e.g. 'v5'), or any framegate model id or alias. "
        "A version that is not a catalog name resolves to the route 'pixverse-<version>'.",
        examples=["v5"],
    )
    duration: int = Field(
        description="Seconds: 5 or 8 on PixVerse's models; other models take what their "
        "catalog route offers.",
        examples=[5],
    )
    quality: Quality = Field(description="Output short side; with the aspect ratio, the size.")
    motion_mode: Literal["normal", "fast"] = Field(
        default="normal", description="Only 'normal' is supported."
    )
    negative_prompt: str | None = Field(default=None, max_length=MAX_PROMPT)
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    water_mark: bool = Field(default=False, description="Only false: framegate adds none.")
    # Documented PixVerse features framegate does not offer: accepted only when empty.
    style: str | None = Field(default=None, description="Not supported: leave empty.")
    camera_movement: str | None = Field(default=None, description="Not supported.")
    template_id: int | None = Field(default=None, description="Not supported.")
    sound_effect_switch: bool = Field(default=False, description="Not supported.")
    sound_effect_content: str | None = Field(default=None, description="Not supported.")
    lip_sync_switch: bool = Field(default=False, description="Not supported.")


_UNSUPPORTED_FIELDS = (
    "style",
    "camera_movement",
    "template_id",
    "sound_effect_switch",
    "sound_effect_content",
    "lip_sync_switch",
)


class PixVerseTextToVideoRequest(_GenerateFields):
    """PixVerse's text-to-video request."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "aspect_ratio": "16:9",
                    "duration": 5,
                    "model": "v5",
                    "motion_mode": "normal",
                    "negative_prompt": "blurry",
                    "prompt": "A red fox running through fresh snow",
                    "quality": "540p",
                    "seed": 0,
                    "water_mark": False,
                }
            ]
        }
    )

    aspect_ratio: AspectRatio


class PixVerseImageToVideoRequest(_GenerateFields):
    """PixVerse's image-to-video request: the first frame is an uploaded image."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "duration": 5,
                    "img_id": 4611686018427,
                    "model": "v5",
                    "motion_mode": "normal",
                    "prompt": "The fox turns its head towards the camera",
                    "quality": "540p",
                }
            ]
        }
    )

    img_id: int = Field(description="The img_id returned by POST /openapi/v2/image/upload.")


class _Envelope(BaseModel):
    ErrCode: int = Field(default=ERR_OK, description="0 on success.")
    ErrMsg: str = "success"


class PixVerseErrorEnvelope(_Envelope):
    """A refused request (also answered HTTP 200 for most ErrCodes, as PixVerse does)."""

    ErrCode: int = Field(examples=[ERR_INVALID_PARAMETER])
    ErrMsg: str
    Resp: None = None


ERROR_MODEL = PixVerseErrorEnvelope


class PixVerseVideoId(BaseModel):
    video_id: int = Field(description="Poll GET /openapi/v2/video/result/{video_id}.")


class PixVerseGenerateResponse(_Envelope):
    Resp: PixVerseVideoId


class PixVerseUploadedImage(BaseModel):
    img_id: int = Field(description="Pass as img_id to /openapi/v2/video/img/generate.")
    img_url: str = Field(description="A signed URL of the stored image.")


class PixVerseUploadResponse(_Envelope):
    Resp: PixVerseUploadedImage


class PixVerseVideoResult(BaseModel):
    id: int = Field(description="The video_id.")
    status: VideoStatus = Field(
        description="1 succeeded, 5 generating (queued or running), 7 refused by content "
        "moderation, 8 failed (or cancelled); credits are refunded on 7 and 8."
    )
    url: str = Field(description="The MP4 (a signed URL) once status is 1; '' before.")
    prompt: str
    negative_prompt: str
    seed: int
    outputWidth: int
    outputHeight: int
    resolution_ratio: int = Field(description="The short side, e.g. 540.")
    size: int = Field(description="The MP4's size in bytes once status is 1; 0 before.")
    style: str = ""
    create_time: str = Field(examples=["2026-01-01T12:00:00Z"])
    modify_time: str


class PixVerseResultResponse(_Envelope):
    Resp: PixVerseVideoResult


class PixVerseBalance(BaseModel):
    account_id: int = Field(description="A stable integer derived from the framegate account.")
    credit_monthly: int = Field(
        description="Always 0: framegate credits are granted, not refreshed monthly."
    )
    credit_package: int = Field(
        description="The account's available framegate credits (held credits excluded)."
    )


class PixVerseBalanceResponse(_Envelope):
    Resp: PixVerseBalance


_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {
        "model": PixVerseErrorEnvelope,
        "description": "Invalid or missing key (401, ErrCode 400012), key without the "
        "scope (403, 500020), request rate or concurrent-generation limit (429, 500044, "
        "with Retry-After). Other refusals are answered HTTP 200 with their ErrCode.",
    },
    "5XX": {
        "model": PixVerseErrorEnvelope,
        "description": "Overloaded or failing model (503, ErrCode 500069, Retry-After) or an "
        "unexpected error (99999).",
    },
}
_OK_WITH_ERRCODES = (
    "Success (ErrCode 0), or a refusal answered HTTP 200 with Resp null and its ErrCode: "
)


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """openapi_extra for a route that reads its JSON body itself."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


_IMAGE_DESCRIPTION = "PNG, JPEG or WebP (20 MB by default: FRAMEGATE_UPLOAD_IMAGE_MAX_BYTES)."
_IMAGE_FORM: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {
                            "type": "string",
                            "format": "binary",
                            "description": _IMAGE_DESCRIPTION,
                        }
                    },
                }
            }
        },
    }
}


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
    first = errors[0]
    kind = first["type"]
    param = ".".join(str(p) for p in first["loc"]) or None
    if kind == "string_too_long" and param in ("prompt", "negative_prompt"):
        return InvalidValue(
            f"{param} is longer than {MAX_PROMPT} characters.",
            param=param,
            code="prompt_too_long",
        )
    if kind == "string_too_short":
        return InvalidValue(f"{param} is empty.", param=param, code="missing_parameter")
    if kind.endswith(("_type", "_parsing")) or kind == "int_from_float":
        return InvalidValue(f"{param}: {first['msg']}.", param=param, code="invalid_type")
    return from_validation(errors)


def _check_supported(body: _GenerateFields) -> None:
    for name in _UNSUPPORTED_FIELDS:
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
    return min(_RATIOS, key=lambda ratio: abs(_RATIOS[ratio] / wanted - 1))


def _video_request(
    runtime: Runtime,
    body: _GenerateFields,
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
            size=SIZES[(body.quality, aspect_ratio)],
            input_image=input_image,
            negative_prompt=body.negative_prompt or None,
            # Drawn here when absent, so the seed the result reports is in PixVerse's range.
            seed=secrets.randbelow(MAX_SEED + 1) if body.seed is None else body.seed,
        )
    except ValidationError as exc:
        raise from_validation(exc.errors()) from None


async def _submit(
    runtime: Runtime, session: AsyncSession, auth: AuthContext, video: VideoGenerationRequest
) -> PixVerseGenerateResponse:
    task = await runtime.tasks.submit_video(session, auth, video)
    await session.commit()
    runtime.signals.task_queued()
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
    response_model=PixVerseGenerateResponse | PixVerseErrorEnvelope,
    responses={
        200: {"description": _OK_WITH_ERRCODES + "400011, 400013, 400017, 400018, 500090."},
        **_ERROR_RESPONSES,
    },
    summary="PixVerse: text-to-video generation",
    openapi_extra=_json_body(PixVerseTextToVideoRequest),
)
async def text_to_video(
    request: Request, runtime: RuntimeDep, session: WriteSession, _key: ApiKeyDoc
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
    response_model=PixVerseGenerateResponse | PixVerseErrorEnvelope,
    responses={
        200: {"description": _OK_WITH_ERRCODES + "400011, 400013, 400017, 400018, 400032, 500090."},
        **_ERROR_RESPONSES,
    },
    summary="PixVerse: image-to-video generation",
    openapi_extra=_json_body(PixVerseImageToVideoRequest),
)
async def image_to_video(
    request: Request, runtime: RuntimeDep, session: WriteSession, _key: ApiKeyDoc
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
    response_model=PixVerseUploadResponse | PixVerseErrorEnvelope,
    responses={
        200: {"description": _OK_WITH_ERRCODES + "400011, 400013, 400017, 500030, 500031, 500032."},
        **_ERROR_RESPONSES,
    },
    summary="PixVerse: upload an image",
    openapi_extra=_IMAGE_FORM,
)
async def upload_image(
    request: Request,
    runtime: RuntimeDep,
    session: WriteSession,
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
    await session.commit()
    url = absolute(runtime.signer.sign_path(upload.key))
    return PixVerseUploadResponse(
        Resp=PixVerseUploadedImage(img_id=_alias(upload.number), img_url=url)
    )


@router.get(
    f"{PREFIX}/video/result/{{video_id}}",
    response_model=PixVerseResultResponse | PixVerseErrorEnvelope,
    responses={200: {"description": _OK_WITH_ERRCODES + "400017, 500008."}, **_ERROR_RESPONSES},
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
    response_model=PixVerseBalanceResponse | PixVerseErrorEnvelope,
    responses={200: {"description": _OK_WITH_ERRCODES + "400017."}, **_ERROR_RESPONSES},
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
