"""FastAPI dependencies shared by every router: runtime, DB session, authentication."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from framegate.keys.middleware import request_auth
from framegate.keys.service import AuthContext
from framegate.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: one session, one transaction. Committed when the route
    returns, so a client never sees an id that is not yet durable; rolled back when it
    raises (every error, a dialect's included, is rendered outside the route). Services
    never commit; what must wait for the commit (waking the workers) is an after-commit
    hook of the service that needs it (``framegate.db.after_commit``)."""
    async with runtime.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


# Closed when the route returns, before the response is sent: the transaction must not
# stay open (a SQLite write lock) while the idempotency layer stores the response, and a
# client that reads the response must find what it names committed.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_read_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """A session for routes that only read."""
    async with runtime.read_sessionmaker() as session:
        yield session


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]


# Documents the scheme in OpenAPI; the key itself is checked by the authentication
# middleware so that every malformed variant gets its own precise 401.
API_KEY_SCHEME = "APIKey"
_bearer = HTTPBearer(
    auto_error=False, scheme_name=API_KEY_SCHEME, description="An API key: `Bearer fg_live_…`."
)


def require_scope(scope: str) -> Callable[..., object]:
    """A dependency that authenticates the request's key and checks it holds ``scope``."""

    async def dependency(
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> AuthContext:
        return await authorize(request, scope)

    return dependency


async def authorize(request: Request, scope: str) -> AuthContext:
    """Authenticate the request's key, check its scope and count it against its rate."""
    runtime: Runtime = request.app.state.runtime
    context = request_auth(request.scope)
    context.require(scope)
    limits = await runtime.limits.plan_for(context.account.plan)
    await runtime.limits.check_rate(context, limits)
    return context


def absolute_url_builder(request: Request) -> Callable[[str], str]:
    """Turns a path into a URL on this server (or on FRAMEGATE_PUBLIC_URL when set)."""
    runtime: Runtime = request.app.state.runtime
    base = runtime.settings.public_url.rstrip("/") or _request_base(request)
    return lambda path: f"{base}{path}"


def _request_base(request: Request) -> str:
    # What str(request.base_url) gives, without building URL objects on every poll.
    scope = request.scope
    host = request.headers.get("host")
    if not host:
        server = scope.get("server") or ("localhost", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}".rstrip("/")


AbsoluteURL = Annotated[Callable[[str], str], Depends(absolute_url_builder)]
