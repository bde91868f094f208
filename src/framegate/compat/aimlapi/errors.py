"""framegate's errors in AI/ML API's envelope and statuses."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from framegate.compat.aimlapi.schemas import (
    AimlErrorBody,
)
from framegate.compat.base import error_param, request_id
from framegate.exceptions import FramegateError

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


def error_docs(*statuses: int) -> dict[int | str, dict[str, Any]]:
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
