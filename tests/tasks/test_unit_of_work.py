"""One request, one transaction: the request's session commits when the route returns and
rolls back when it raises; after-commit hooks (waking the workers) run only on commit."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy.engine import make_url

import framegate.tasks.service as service_module
from framegate.credits.service import credit_service
from framegate.db import after_commit, after_rollback
from framegate.dependencies import get_session
from framegate.exceptions import InvalidValue, PaymentRequired
from framegate.runtime import Runtime
from tests.conftest import Tenant
from tests.waiting import wait_until


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


async def test_after_rollback_hooks_and_a_failing_hook_does_not_fail_the_commit(
    runtime: Runtime,
) -> None:
    calls: list[str] = []

    def broken() -> None:
        raise RuntimeError("a listener failed")

    async with runtime.sessionmaker() as session:
        await session.connection()
        after_rollback(session, lambda: calls.append("undone"))
        after_commit(session, lambda: calls.append("not on rollback"))
        await session.rollback()
        await session.connection()
        after_rollback(session, lambda: calls.append("not on commit"))
        after_commit(session, broken)
        after_commit(session, lambda: calls.append("after the failing one"))
        await session.commit()  # the write is durable: a hook's failure is logged, not raised
    assert calls == ["undone", "after the failing one"]


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(buffer, "PNG")
    return buffer.getvalue()


def _upload_files(runtime: Runtime) -> list[Path]:
    return [p for p in runtime.settings.storage_dir.rglob("*") if p.is_file() and "upl_" in str(p)]


async def test_a_refused_multipart_submission_keeps_no_upload_file(
    client: httpx.AsyncClient,
    runtime: Runtime,
    account: Tenant,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = set(_upload_files(runtime))

    async def lost_the_race(*args: object, **kwargs: object) -> None:
        raise PaymentRequired("Not enough credits.", code="insufficient_credits")

    # The transaction's own check refuses after the form's file was stored.
    monkeypatch.setattr(runtime.limits, "check_submission", lost_the_race)
    for path, field in (("/v1/videos", "input_reference"), ("/v1/video/generate", "image")):
        response = await client.post(
            path,
            data={"prompt": "a cat", "model": "preview"},
            files={field: ("a.png", _png(), "image/png")},
            headers=account.headers,
        )
        assert response.status_code in (402, 429), response.text
    await wait_until(lambda: set(_upload_files(runtime)) == before, 5, "the files to go")


async def test_reading_and_decoding_an_upload_holds_no_write_lock(
    client: httpx.AsyncClient,
    runtime: Runtime,
    account: Tenant,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not runtime.settings.resolved_database_url.startswith("sqlite"):
        pytest.skip("SQLite's write lock")
    database = Path(make_url(runtime.settings.resolved_database_url).database or "")
    probes: list[str] = []
    decode = service_module.intake_image

    def probing(*args: Any, **kwargs: Any) -> Any:
        other = sqlite3.connect(database, timeout=0.05, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            probes.append("free")
        except sqlite3.OperationalError as exc:
            probes.append(f"locked: {exc}")
        finally:
            other.close()
        return decode(*args, **kwargs)

    monkeypatch.setattr(service_module, "intake_image", probing)
    uploaded = await client.post(
        "/v1/uploads", files={"file": ("a.png", _png())}, headers=account.headers
    )
    assert uploaded.status_code in (200, 201), uploaded.text
    submitted = await client.post(
        "/v1/async/videos/generations",
        json={"model": "preview", "prompt": "a cat", "input_image": uploaded.json()["id"]},
        headers=account.headers,
    )
    assert submitted.status_code == 202, submitted.text
    multipart = await client.post(
        "/v1/videos",
        data={"prompt": "a cat", "model": "preview"},
        files={"input_reference": ("a.png", _png(), "image/png")},
        headers=account.headers,
    )
    assert multipart.status_code == 200, multipart.text
    assert probes == ["free", "free"]
    assert _upload_files(runtime)  # where the refused submission's file must not stay
