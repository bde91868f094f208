"""Other vendors' dialects over framegate's services (see docs/compat.md)."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

if TYPE_CHECKING:
    from framegate.exceptions import FramegateError

# Path prefixes of each dialect and the module that renders its errors.
_DIALECTS: tuple[tuple[str, str], ...] = (
    ("/v1/videos/", "openai_videos"),
    ("/v1/videos", "openai_videos"),
    ("/v1/video/", "pixelapi"),
    ("/openapi/v2/", "pixverse"),
    ("/v2/generate/video/", "aimlapi"),
    ("/v2/video/generations", "aimlapi"),
)
# Native paths inside a dialect's prefix.
_NATIVE = ("/v1/videos/generations",)


def dialect_module(path: str) -> str | None:
    """The dialect a path belongs to (None: the native API)."""
    if path in _NATIVE:
        return None
    for prefix, module in _DIALECTS:
        if path == prefix or (prefix.endswith("/") and path.startswith(prefix)):
            return module
    return None


def _dialect(path: str) -> ModuleType | None:
    module = dialect_module(path)
    return None if module is None else importlib.import_module(f"framegate.compat.{module}")


def dialect_error_model(path: str) -> type[BaseModel] | None:
    """The error envelope of the dialect a path belongs to (None: framegate's own)."""
    dialect = _dialect(path)
    return None if dialect is None else dialect.ERROR_MODEL


def dialect_idempotency_header(path: str) -> str | None:
    """The header a dialect's clients send their idempotency key in, besides
    Idempotency-Key (None: no other)."""
    dialect = _dialect(path)
    return getattr(dialect, "IDEMPOTENCY_HEADER", None)


def render_for_path(scope: Scope, error: FramegateError) -> Response | None:
    """``error`` in the envelope of the dialect the request's path belongs to, for errors
    raised outside a dialect's routes (middlewares, unknown paths); None for native paths."""
    dialect = _dialect(scope.get("path", ""))
    if dialect is None:
        return None
    render = dialect.render_error
    response: Response = render(Request(scope), error)
    for name, value in error.headers.items():
        response.headers.setdefault(name, value)
    return response
