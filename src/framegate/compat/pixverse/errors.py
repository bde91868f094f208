"""framegate's errors as PixVerse ErrCodes, answered HTTP 200 as PixVerse does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from framegate.compat.base import error_param
from framegate.compat.pixverse.schemas import (
    ERR_BALANCE,
    ERR_CONCURRENCY,
    ERR_EMPTY_PARAMETER,
    ERR_HIGH_LOAD,
    ERR_IMAGE_FORMAT,
    ERR_IMAGE_TOO_LARGE,
    ERR_IMAGE_UNREADABLE,
    ERR_INVALID_BINDING,
    ERR_INVALID_IMAGE_ID,
    ERR_INVALID_KEY,
    ERR_INVALID_PARAMETER,
    ERR_MESSAGES,
    ERR_NO_PERMISSION,
    ERR_NOT_FOUND,
    ERR_PROMPT_TOO_LONG,
    ERR_UNKNOWN,
    PixVerseErrorEnvelope,
)
from framegate.exceptions import FramegateError

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


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
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
OK_WITH_ERRCODES = (
    "Success (ErrCode 0), or a refusal answered HTTP 200 with Resp null and its ErrCode: "
)
