"""The application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Route
from starlette.staticfiles import StaticFiles

from framegate import __version__
from framegate.api import ROUTERS
from framegate.config import Settings
from framegate.console.web import STATIC_DIR as CONSOLE_STATIC
from framegate.engines.registry import EngineRegistry
from framegate.exceptions import FramegateError
from framegate.idempotency.middleware import IdempotencyMiddleware
from framegate.keys.middleware import AuthenticationMiddleware
from framegate.kit.body_limit import BodySizeLimitMiddleware
from framegate.kit.dialects import render_for_path
from framegate.kit.openapi import use_error_envelope_in_openapi
from framegate.kit.request_guard import RequestGuardMiddleware
from framegate.kit.request_id import RequestIdMiddleware
from framegate.kit.validation import from_validation
from framegate.runtime import Runtime

log = logging.getLogger(__name__)

DESCRIPTION = """\
framegate: a self-hostable video and image generation API. Submit a task, poll it,
download the MP4. Authenticate with `Authorization: Bearer fg_live_…`.
Every error is `{"error": {"type", "code", "message", "param", "request_id"}}` and every
response carries `X-Request-Id`.
"""


def create_app(
    settings: Settings | None = None,
    *,
    engines: EngineRegistry | None = None,
    start_workers: bool = True,
    with_worker: bool = False,
) -> FastAPI:
    """The API. ``start_workers``: also its background jobs (embedded mode: the engines;
    distributed mode: the live workers' routes, and a worker too when ``with_worker``)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Runtime.create(settings, engines=engines)
        app.state.runtime = runtime
        if start_workers:
            await runtime.start_workers(with_worker=with_worker)
        try:
            yield
        finally:
            await runtime.close()

    app = FastAPI(
        title="framegate",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    # Outermost last: request id → body size limit → authentication → request guard →
    # idempotency → routes. PixVerse's clients send their idempotency key as Ai-trace-id.
    app.add_middleware(IdempotencyMiddleware, header_aliases=(b"ai-trace-id",))
    app.add_middleware(RequestGuardMiddleware, max_json_depth=settings.max_json_depth)
    app.add_middleware(AuthenticationMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestIdMiddleware)
    # Before the routers: the console's last route catches every other /console path.
    app.mount("/console/static", StaticFiles(directory=CONSOLE_STATIC), name="console-static")
    for router in ROUTERS:
        app.include_router(router)
    _install_error_handlers(app)
    use_error_envelope_in_openapi(app)
    return app


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _envelope(request: Request, error: FramegateError) -> Response:
    # Unknown paths and methods under a dialect's prefix answer in that dialect's envelope.
    dialect = render_for_path(request.scope, error)
    if dialect is not None:
        return dialect
    return JSONResponse(
        error.body(_request_id(request)), status_code=error.status_code, headers=error.headers
    )


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FramegateError)
    async def _framegate_error(request: Request, exc: FramegateError) -> Response:
        return _envelope(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _envelope(request, from_validation(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        message = str(exc.detail)
        if exc.status_code == 405:
            # Starlette answers from the first route whose path matches; Allow must list
            # the methods of every route on the path.
            allowed = _allowed_methods(request)
            headers["Allow"] = ", ".join(allowed)
            message = f"{request.method} is not allowed here; use {', '.join(allowed)}."
        error = FramegateError(
            message, code=_HTTP_CODES.get(exc.status_code, "error"), headers=headers
        )
        error.status_code = exc.status_code  # type: ignore[misc]
        error.type = "not_found_error" if exc.status_code == 404 else "invalid_request_error"  # type: ignore[misc]
        return _envelope(request, error)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        response = _envelope(request, FramegateError("Internal server error."))
        # This handler runs outside the request-id middleware; set the header here.
        request_id = _request_id(request)
        if request_id:
            response.headers["X-Request-Id"] = request_id
        return response


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def _allowed_methods(request: Request) -> list[str]:
    """The methods the request's path is described with; where a fixed path such as
    /v1/webhooks/task-secret also fits a templated one (/v1/webhooks/{webhook_id}), the
    fixed path's methods only."""
    path = request.scope["path"]
    matching = [route for route in _routes(request.app.routes) if route.path_regex.match(path)]
    fixed = [route for route in matching if route.path == path]
    return sorted({method for route in fixed or matching for method in route.methods or ()})


def _routes(routes: Iterable[BaseRoute]) -> Iterator[Route]:
    # Routers are included without a prefix (see api.py), so their routes' own paths are
    # the paths they answer.
    for route in routes:
        if isinstance(route, Route):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routes(included.routes)
