"""Errors answered by ASGI middlewares, in the envelope of the route family they hit."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response
from starlette.types import Scope, Send

from framegate.exceptions import FramegateError
from framegate.kit.dialects import render_for_path


def error_response(scope: Scope, error: FramegateError) -> Response:
    """``error`` as the route at ``scope``'s path would render it (a dialect's envelope under
    a dialect's prefix, framegate's elsewhere), with the error's headers."""
    dialect = render_for_path(scope, error)
    if dialect is not None:
        return dialect
    request_id = scope.get("state", {}).get("request_id")
    return JSONResponse(
        error.body(request_id), status_code=error.status_code, headers=error.headers
    )


async def send_error(scope: Scope, send: Send, error: FramegateError) -> None:
    await error_response(scope, error)(scope, _no_receive, send)


async def _no_receive() -> dict[str, str]:
    return {"type": "http.disconnect"}
