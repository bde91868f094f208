"""One error hierarchy: every failure the API reports is a FramegateError.

The exception handler in ``app.py`` turns any of them into the single error envelope
``{"error": {"type", "code", "message", "param", "request_id"}}``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field


class FramegateError(Exception):
    """Base error: an HTTP status, a stable machine code and a message for people."""

    status_code: ClassVar[int] = 500
    type: ClassVar[str] = "api_error"
    code: ClassVar[str] = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code  # type: ignore[misc]
        self.headers = headers or {}

    def body(self, request_id: str | None) -> dict[str, Any]:
        return {
            "error": {
                "type": self.type,
                "code": self.code,
                "message": self.message,
                "param": self.param,
                "request_id": request_id,
            }
        }


class BadRequest(FramegateError):
    status_code = 400
    type = "invalid_request_error"
    code = "bad_request"


class InvalidValue(FramegateError):
    status_code = 422
    type = "invalid_request_error"
    code = "invalid_value"


class Unauthorized(FramegateError):
    status_code = 401
    type = "authentication_error"
    code = "invalid_api_key"


class Forbidden(FramegateError):
    status_code = 403
    type = "permission_error"
    code = "insufficient_scope"


class NotFound(FramegateError):
    status_code = 404
    type = "not_found_error"
    code = "not_found"


class Conflict(FramegateError):
    status_code = 409
    type = "conflict_error"
    code = "conflict"


class Gone(FramegateError):
    status_code = 410
    type = "not_found_error"
    code = "gone"


class PaymentRequired(FramegateError):
    status_code = 402
    type = "billing_error"
    code = "insufficient_credits"


class PayloadTooLarge(FramegateError):
    status_code = 413
    type = "invalid_request_error"
    code = "payload_too_large"


class ServiceUnavailable(FramegateError):
    status_code = 503
    type = "api_error"
    code = "service_unavailable"


class ErrorBody(BaseModel):
    type: str = Field(examples=["invalid_request_error"])
    code: str = Field(examples=["invalid_value"])
    message: str
    param: str | None = Field(default=None, description="The request field at fault.")
    request_id: str | None = Field(default=None, description="Also in the X-Request-Id header.")


class ErrorResponse(BaseModel):
    """The one error envelope every route answers with."""

    error: ErrorBody


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the error statuses a route can answer."""
    descriptions = {
        400: "Bad request",
        401: "Missing, malformed or revoked API key",
        402: "Not enough credits",
        403: "The key lacks the scope this route needs",
        404: "Not found (or owned by another account)",
        409: "Conflict with the object's current state",
        410: "Deleted at the end of its retention period",
        413: "Payload too large",
        422: "A field has an invalid value",
        429: "Too many requests: a rate or concurrency limit (retry after Retry-After)",
        502: "Generation failed (credits refunded)",
        503: "Service unavailable",
    }
    return {
        status: {"description": descriptions.get(status, "Error"), "model": ErrorResponse}
        for status in statuses
    }
