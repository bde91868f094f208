"""Fixtures: a real database per backend (SQLite file and a throwaway PostgreSQL database),
the app served through httpx's ASGI transport with its embedded workers running, and a
fresh account per test (tests are isolated by tenant, not by rolling back)."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import yaml
from fastapi import FastAPI

from framegate.app import create_app
from framegate.config import Settings
from framegate.engines.preview import PreviewEngine
from framegate.engines.registry import EngineRegistry
from framegate.runtime import Runtime
from tests.engines_for_tests import FailingEngine, GatedEngine
from tests.s3server import S3Server, seaweedfs
from tests.waiting import wait_until

POSTGRES_ADMIN_DSN = os.environ.get(
    "FRAMEGATE_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite", "postgresql"]
TEST_RECEIVER_HOST = "127.0.0.3"

TEST_ROUTES: dict[str, Any] = {
    "routes": [
        {
            "id": "test-failing",
            "kind": "video",
            "engine": "failing",
            "capabilities": {"text_to_video": True, "image_to_video": True},
            "pricing": {"unit": "second", "credits": {"480p": 1, "720p": 2, "1080p": 4}},
        },
        {
            "id": "test-gated",
            "kind": "video",
            "engine": "gated",
            "capabilities": {"text_to_video": True},
            "pricing": {"unit": "clip", "credits": {"480p": 3}},
        },
    ]
}


async def pg_admin(sql: str) -> None:
    """Run one statement as the PostgreSQL administrator (creating, dropping databases)."""
    connection = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for this run, dropped at the end."""
    name = f"framegate_test_{secrets.token_hex(6)}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{name}"
    asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One SeaweedFS S3 server on loopback for the whole run (each test takes a fresh bucket
    with ``s3_server.new_bucket()``)."""
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def settings(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Settings:
    data_dir = tmp_path_factory.mktemp(f"data-{backend}")
    catalog = data_dir / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(TEST_ROUTES))
    database_url = request.getfixturevalue("postgres_url") if backend == "postgresql" else ""
    return Settings(
        env="test",
        data_dir=data_dir,
        database_url=database_url,
        secret_key=secrets.token_urlsafe(40),
        catalog_file=catalog,
        worker_concurrency=2,
        task_lease_seconds=2.0,
        reaper_interval_seconds=0.5,
        worker_poll_seconds=0.2,
        image_sync_timeout_seconds=30,
        # Test receivers (webhooks, image servers) listen on this loopback address only;
        # every other private address stays refused.
        allow_private_networks=f"{TEST_RECEIVER_HOST}/32",
        webhook_retry_schedule=[0, 0.2, 0.2, 0.2, 0.2],
        webhook_poll_seconds=0.1,
        webhook_progress_interval_seconds=0.2,
        # Tests that exercise the limits put their account on a stricter plan.
        default_max_concurrent_videos=100,
        default_max_concurrent_images=100,
        default_requests_per_minute=100_000,
        # Every test request comes from one address; tests of these limits lower them.
        anonymous_requests_per_minute=1_000_000,
        failed_auth_per_minute=1_000_000,
    )


@pytest.fixture(scope="session")
def gate() -> GatedEngine:
    return GatedEngine()


@pytest.fixture(scope="session")
async def app(settings: Settings, gate: GatedEngine) -> AsyncIterator[FastAPI]:
    engines = EngineRegistry([PreviewEngine(), FailingEngine(), gate])
    application = create_app(settings, engines=engines)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
def runtime(app: FastAPI) -> Runtime:
    value: Runtime = app.state.runtime
    return value


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@dataclass
class Tenant:
    id: str
    api_key: str
    key_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


async def make_account(
    runtime: Runtime, credits: int = 1000, scopes: list[str] | None = None
) -> Tenant:
    async with runtime.sessionmaker() as session:
        created = await runtime.accounts.create(
            session, name="test", credits=credits, scopes=scopes
        )
        await session.commit()
    return Tenant(created.account.id, created.key.secret, created.key.key.id)


@pytest.fixture
async def account(runtime: Runtime) -> Tenant:
    return await make_account(runtime)


async def wait_for_task(
    client: httpx.AsyncClient, account: Tenant, task_id: str, timeout: float = 60
) -> dict[str, Any]:
    """Poll until the task is terminal (bounded) and return it."""
    status = "unknown"

    async def terminal() -> dict[str, Any] | None:
        nonlocal status
        response = await client.get(f"/v1/tasks/{task_id}", headers=account.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        status = body["status"]
        return body if status in ("completed", "failed", "cancelled") else None

    return await wait_until(terminal, timeout, lambda: f"task {task_id} to end (still {status})")


def file_path(url: str) -> str:
    """The path + query of an absolute output URL, for the ASGI client."""
    parsed = httpx.URL(url)
    return f"{parsed.path}?{parsed.query.decode()}"


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
