"""One request, one transaction: the request's session commits when the route returns and
rolls back when it raises; after-commit hooks (waking the workers) run only on commit."""

from __future__ import annotations

import httpx
import pytest

from framegate.credits.service import credit_service
from framegate.db import after_commit
from framegate.dependencies import get_session
from framegate.exceptions import InvalidValue
from framegate.runtime import Runtime
from tests.conftest import Tenant


async def _available(runtime: Runtime, account_id: str) -> int:
    async with runtime.read_sessionmaker() as session:
        return (await credit_service.balance(session, account_id)).available


async def test_request_session_commits_on_success_and_rolls_back_on_error(
    runtime: Runtime, account: Tenant
) -> None:
    before = await _available(runtime, account.id)

    failing = get_session(runtime)
    session = await anext(failing)
    await credit_service.grant(session, account.id, 7, "rolled back")
    with pytest.raises(InvalidValue):
        await failing.athrow(InvalidValue("refused", param="x"))
    assert await _available(runtime, account.id) == before

    succeeding = get_session(runtime)
    session = await anext(succeeding)
    await credit_service.grant(session, account.id, 7, "committed")
    with pytest.raises(StopAsyncIteration):
        await anext(succeeding)
    assert await _available(runtime, account.id) == before + 7


async def test_after_commit_hooks_run_on_commit_only(runtime: Runtime) -> None:
    calls: list[str] = []
    async with runtime.sessionmaker() as session:
        await session.connection()
        after_commit(session, lambda: calls.append("rolled back"))
        await session.rollback()
        await session.connection()
        after_commit(session, lambda: calls.append("committed"))
        assert calls == []
        await session.commit()
        await session.commit()
    assert calls == ["committed"]


async def test_a_refused_dialect_request_writes_nothing(
    client: httpx.AsyncClient, runtime: Runtime, account: Tenant
) -> None:
    # Errors of a dialect's routes are rendered in its envelope outside the route, after
    # the request's transaction rolled back: no task, no hold.
    before = await _available(runtime, account.id)
    response = await client.post(
        "/v1/videos",
        json={"prompt": "a cat", "model": "no-such-model"},
        headers=account.headers,
    )
    assert response.status_code in (400, 404)
    assert "error" in response.json()
    assert await _available(runtime, account.id) == before
