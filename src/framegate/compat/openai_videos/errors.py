"""framegate's errors in OpenAI's envelope, with OpenAI's field names and codes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from framegate.compat.base import error_param
from framegate.compat.openai_videos.schemas import (
    OpenAIErrorBody,
    OpenAIErrorResponse,
)
from framegate.exceptions import FramegateError

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
def in_dialect_terms() -> Iterator[None]:
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


def error_docs(*statuses: int) -> dict[int | str, dict[str, Any]]:
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
