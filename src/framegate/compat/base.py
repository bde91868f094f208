"""What the compatibility dialects share.

A dialect is a thin router over the same services as the native API (no state of its
own): its own request/response schemas, its own way to carry the API key and its own error
envelope. Errors raised in its routes (validation, auth, limits, credits, not found) reach
the application's error handlers like any other, which render them with the renderer of the
dialect the path belongs to (``framegate.kit.dialects``), after the request's transaction
was rolled back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from fastapi import Depends, Request

# Every key header a dialect's clients use is read by the authentication middleware; the
# native routes' check of scope and rate applies as it is.
from framegate.dependencies import API_KEY_SCHEME, authorize
from framegate.exceptions import FramegateError
from framegate.keys.scopes import Scope
from framegate.keys.service import AuthContext

__all__ = [
    "SECURITY",
    "TaskReader",
    "VideoWriter",
    "authorize",
    "describe",
    "error_param",
    "request_id",
]

# openapi_extra of a route that takes a framegate key: the native API's scheme.
SECURITY: dict[str, Any] = {"security": [{API_KEY_SCHEME: []}]}


def _scoped(scope: str) -> Callable[[Request], Awaitable[AuthContext]]:
    """A dependency: the request's key, authorized for ``scope``."""

    async def dependency(request: Request) -> AuthContext:
        return await authorize(request, scope)

    return dependency


VideoWriter = Annotated[AuthContext, Depends(_scoped(Scope.videos_write))]
TaskReader = Annotated[AuthContext, Depends(_scoped(Scope.tasks_read))]


def request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def error_param(error: FramegateError, renames: Mapping[str, str]) -> str | None:
    """The dialect's name of the field at fault (framegate name → dialect name)."""
    if error.param is None:
        return None
    return renames.get(error.param, error.param)


def describe(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)
