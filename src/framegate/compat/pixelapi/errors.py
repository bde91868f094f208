"""framegate's errors in PixelAPI's envelope and vocabulary of codes."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from framegate.compat.base import error_param, request_id
from framegate.compat.pixelapi.schemas import (
    IMAGE_FIELD,
    PixelError,
    PixelErrorBody,
)
from framegate.exceptions import FramegateError

# framegate's request field names → PixelAPI's, for the `param` of errors.
_RENAMES = {
    "input_image": "image",
    "file": "image",
    "size": "resolution",
    "task_id": "generation_id",
}

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


def error_docs(*statuses: int) -> dict[int | str, dict[str, Any]]:
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
