"""Which route family a path belongs to, and how that family renders errors.

Every dialect (``framegate.compat.*``) describes itself with a ``Dialect``: its path
prefixes, its error renderer and envelope model, and the header its clients send their
idempotency key in. ``framegate.api`` installs them all into ``dialects`` once, beside the
router list; the error handlers, the middlewares and the OpenAPI description look paths up
here, so nothing below the routers imports a dialect.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from framegate.exceptions import FramegateError

ErrorRenderer = Callable[[Request, FramegateError], Response]


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    # A prefix ending in "/" covers the paths below it; any other is one exact path.
    prefixes: tuple[str, ...]
    render_error: ErrorRenderer
    error_model: type[BaseModel]
    # The header its clients send their idempotency key in, besides Idempotency-Key.
    idempotency_header: str | None = None

    def covers(self, path: str) -> bool:
        return any(
            path == prefix or (prefix.endswith("/") and path.startswith(prefix))
            for prefix in self.prefixes
        )


class DialectTable:
    def __init__(self) -> None:
        self._dialects: tuple[Dialect, ...] = ()
        self._native: frozenset[str] = frozenset()

    def install(self, dialects: Iterable[Dialect], *, native: Iterable[str] = ()) -> None:
        """Set the dialects (``native``: paths of the native API inside their prefixes)."""
        self._dialects = tuple(dialects)
        self._native = frozenset(native)

    def find(self, path: str) -> Dialect | None:
        """The dialect a path belongs to (None: the native API)."""
        if path in self._native:
            return None
        return next((dialect for dialect in self._dialects if dialect.covers(path)), None)

    def error_model(self, path: str) -> type[BaseModel] | None:
        dialect = self.find(path)
        return None if dialect is None else dialect.error_model

    def idempotency_header(self, path: str) -> str | None:
        dialect = self.find(path)
        return None if dialect is None else dialect.idempotency_header

    def render(self, scope: Scope, error: FramegateError) -> Response | None:
        """``error`` in the envelope of the dialect the request's path belongs to, with
        the error's headers; None for native paths."""
        dialect = self.find(scope.get("path", ""))
        if dialect is None:
            return None
        response = dialect.render_error(Request(scope), error)
        for name, value in error.headers.items():
            response.headers.setdefault(name, value)
        return response


# Filled by framegate.api, the one module that knows every router.
dialects = DialectTable()


def render_for_path(scope: Scope, error: FramegateError) -> Response | None:
    return dialects.render(scope, error)
