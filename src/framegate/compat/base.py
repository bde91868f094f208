"""What the compatibility dialects share.

A dialect is a thin router over the same services as the native API (no state of its
own): its own request/response schemas, its own way to carry the API key and its own error
envelope. ``dialect_route(render)`` is the route class that renders every error raised in a
dialect's routes (validation, auth, limits, credits, not found) with ``render`` instead of
framegate's envelope.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from framegate.exceptions import FramegateError
from framegate.keys.middleware import request_auth
from framegate.keys.service import AuthContext
from framegate.kit.validation import from_validation
from framegate.runtime import Runtime

ErrorRenderer = Callable[[Request, FramegateError], Response]


async def authorize(request: Request, scope: str) -> AuthContext:
    """Authenticate (any supported key header), check the scope, count the request."""
    runtime: Runtime = request.app.state.runtime
    context = request_auth(request.scope)
    context.require(scope)
    limits = await runtime.limits.plan_for(context.account.plan)
    await runtime.limits.check_rate(context, limits)
    return context


def request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def dialect_route(render: ErrorRenderer) -> type[APIRoute]:
    """A route class whose errors are rendered in the dialect's envelope."""

    class DialectRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def dialect_handler(request: Request) -> Response:
                try:
                    return await handler(request)
                except RequestValidationError as exc:
                    error = from_validation(exc.errors())
                except FramegateError as exc:
                    error = exc
                response = render(request, error)
                for name, value in error.headers.items():
                    response.headers.setdefault(name, value)
                return response

            return dialect_handler

    return DialectRoute


def error_param(error: FramegateError, renames: Mapping[str, str]) -> str | None:
    """The dialect's name of the field at fault (framegate name → dialect name)."""
    if error.param is None:
        return None
    return renames.get(error.param, error.param)


def describe(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)
