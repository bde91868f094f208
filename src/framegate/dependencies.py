"""FastAPI dependencies shared by every router: runtime, DB session, authentication."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession

from framegate.keys.service import AuthContext
from framegate.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """A session per request. Writing endpoints commit explicitly before they answer, so
    a client never sees an id that is not yet durable; anything uncommitted is rolled back."""
    async with runtime.sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_read_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """A session for routes that only read."""
    async with runtime.read_sessionmaker() as session:
        yield session


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session)]


async def _authenticate(
    runtime: RuntimeDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> AuthContext:
    return await runtime.keys.authenticate(authorization)


def require_scope(scope: str) -> Callable[..., object]:
    async def dependency(context: Annotated[AuthContext, Depends(_authenticate)]) -> AuthContext:
        context.require(scope)
        return context

    return dependency


async def absolute_url_builder(request: Request, runtime: RuntimeDep) -> Callable[[str], str]:
    base = runtime.settings.public_url or str(request.base_url)
    base = base.rstrip("/")
    return lambda path: f"{base}{path}"


AbsoluteURL = Annotated[Callable[[str], str], Depends(absolute_url_builder)]
