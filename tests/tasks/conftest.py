"""The lifecycle tests' own runtime: no workers, a database of its own (the suite's embedded
workers would otherwise claim the tasks these tests drive by hand)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import pytest

from framegate.config import Settings
from framegate.runtime import Runtime
from tests.conftest import POSTGRES_ADMIN_DSN, pg_admin
from tests.tasks.ledger_model import Driver


@pytest.fixture(scope="module")
def driver(
    backend: str, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Driver]:
    data_dir = tmp_path_factory.mktemp(f"lifecycle-{backend}")
    name = f"framegate_lifecycle_{secrets.token_hex(6)}"
    database_url = f"sqlite+aiosqlite:///{data_dir / 'ledger.db'}"
    # Its own loop (not installed as the thread's current loop, so the suite's is left alone).
    runner = asyncio.Runner(loop_factory=asyncio.new_event_loop)
    if backend == "postgresql":
        runner.run(pg_admin(f'CREATE DATABASE "{name}"'))
        base = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0].replace(
            "postgresql://", "postgresql+asyncpg://"
        )
        database_url = f"{base}/{name}"
    own = settings.model_copy(
        update={
            "worker_concurrency": 0,
            "data_dir": data_dir,
            "database_url": database_url,
            # Leases and deadlines run out only when a rule says so, never by the wall clock.
            "task_lease_seconds": 3600.0,
            "task_deadline_seconds": 86400.0,
            "task_max_attempts": 2,
        }
    )
    runtime = runner.run(Runtime.create(own))
    try:
        yield Driver(runner, runtime)
    finally:
        runner.run(runtime.close())
        if backend == "postgresql":
            runner.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        runner.close()
