"""Typed errors raised by the framegate client."""

from __future__ import annotations

from typing import Any

import httpx

from ._retries import retry_after_seconds

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "FramegateError",
    "GoneError",
    "InsufficientCreditsError",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "UnprocessableEntityError",
    "WaitTimeoutError",
    "WebhookVerificationError",
]


class FramegateError(Exception):
    """Base class of every error this package raises."""


class APIError(FramegateError):
    """The server answered with an error status and the framegate error envelope."""

    def __init__(
        self,
        message: str,
        *,
        response: httpx.Response,
        status_code: int,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.response = response
        self.status_code = status_code
        self.type = type
        self.code = code
        self.param = param
        self.request_id = request_id
        self.body = body

    def __str__(self) -> str:
        parts = [f"{self.status_code}"]
        if self.code:
            parts.append(self.code)
        text = f"[{' '.join(parts)}] {self.message}"
        if self.param:
            text += f" (param: {self.param})"
        if self.request_id:
            text += f" (request_id: {self.request_id})"
        return text


class BadRequestError(APIError):
    """400: the request is malformed."""


class AuthenticationError(APIError):
    """401: missing, invalid or revoked API key."""


class InsufficientCreditsError(APIError):
    """402: not enough credits, or the key's spend cap is reached."""


class PermissionDeniedError(APIError):
    """403: the key lacks the scope, or a signed URL is invalid."""


class NotFoundError(APIError):
    """404: no such object for this account."""


class ConflictError(APIError):
    """409: the request conflicts with the object's state."""


class GoneError(APIError):
    """410: the output has expired."""


class UnprocessableEntityError(APIError):
    """422: a field has an invalid value."""


class RateLimitError(APIError):
    """429: request rate or concurrency limit exceeded."""

    @property
    def retry_after(self) -> float | None:
        """Seconds the server asked to wait (``Retry-After``: seconds or HTTP date), if said."""
        return retry_after_seconds(self.response.headers.get("retry-after"))


class InternalServerError(APIError):
    """5xx: the server failed."""


class APIConnectionError(FramegateError):
    """The server could not be reached."""

    def __init__(self, message: str = "Connection error.", *, request: httpx.Request | None = None):
        super().__init__(message)
        self.request = request


class APITimeoutError(APIConnectionError):
    """The request timed out."""

    def __init__(
        self, message: str = "Request timed out.", *, request: httpx.Request | None = None
    ):
        super().__init__(message, request=request)


class WaitTimeoutError(FramegateError):
    """A task did not reach a terminal state within the wait timeout."""

    def __init__(self, task_id: str, timeout: float, last_status: str | None) -> None:
        super().__init__(
            f"task {task_id} is still {last_status or 'unfinished'} after {timeout:g} s"
        )
        self.task_id = task_id
        self.timeout = timeout
        self.last_status = last_status


class WebhookVerificationError(FramegateError):
    """A webhook's signature, headers or timestamp did not verify."""


_STATUS_ERRORS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: InsufficientCreditsError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def error_from_response(response: httpx.Response) -> APIError:
    """Build the typed error for an error response (envelope + X-Request-Id)."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    envelope = body.get("error") if isinstance(body, dict) else None
    if not isinstance(envelope, dict):
        envelope = {}
    status = response.status_code
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = InternalServerError if status >= 500 else APIError
    message = envelope.get("message") or response.reason_phrase or f"HTTP {status}"
    return cls(
        str(message),
        response=response,
        status_code=status,
        type=envelope.get("type"),
        code=envelope.get("code"),
        param=envelope.get("param"),
        request_id=envelope.get("request_id") or response.headers.get("x-request-id"),
        body=body,
    )
