"""A reclaimed attempt that finishes late can neither complete the task again nor touch the
outputs of the attempt that did complete it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from framegate.config import Settings
from framegate.dispatch.worker import TaskRunner
from framegate.keys.service import AuthContext
from framegate.kit.time import utcnow
from framegate.models import LedgerEntry, Task
from framegate.runtime import Runtime
from framegate.tasks.schemas import VideoGenerationRequest
from tests.conftest import POSTGRES_ADMIN_DSN, pg_admin


@pytest.fixture
async def idle_runtime(backend: str, settings: Settings, tmp_path: Path) -> AsyncIterator[Runtime]:
    """A runtime with no workers on a database of its own (the suite's workers would
    otherwise claim the task this test drives by hand)."""
    name = f"framegate_attempts_{secrets.token_hex(6)}"
    # Explicit: a copy of the suite's settings would keep its cached database URL, and the
    # suite's workers would then claim the task this test drives by hand.
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'attempts.db'}"
    if backend == "postgresql":
        await pg_admin(f'CREATE DATABASE "{name}"')
        base = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0].replace(
            "postgresql://", "postgresql+asyncpg://"
        )
        database_url = f"{base}/{name}"
    own = settings.model_copy(
        update={"worker_concurrency": 0, "data_dir": tmp_path, "database_url": database_url}
    )
    runtime = await Runtime.create(own)
    try:
        yield runtime
    finally:
        await runtime.close()
        if backend == "postgresql":
            await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def submit(runtime: Runtime) -> Task:
    async with runtime.sessionmaker() as session:
        created = await runtime.accounts.create(session, name="attempts", credits=100)
        await session.commit()
    auth = AuthContext(account=created.account, key=created.key.key)
    body = VideoGenerationRequest(model="preview", prompt="late", duration=1, size="64x64")
    async with runtime.sessionmaker() as session:
        task = await runtime.tasks.submit_video(session, auth, body)
        await session.commit()
    return task


def runner(runtime: Runtime) -> TaskRunner:
    return TaskRunner(
        catalog=runtime.catalog,
        engines=runtime.engines,
        storage=runtime.storage,
        lifecycle=runtime.lifecycle,
        scratch_dir=runtime.settings.data_dir / "tmp",
        max_image_pixels=runtime.settings.input_image_max_pixels,
    )


async def claim_exactly(runtime: Runtime, task_id: str, worker_id: str) -> Task:
    claimed = await runtime.lifecycle.claim(worker_id)
    assert claimed is not None and claimed.id == task_id
    return claimed


async def test_late_attempt_leaves_the_completed_attempt_alone(idle_runtime: Runtime) -> None:
    runtime = idle_runtime
    task = await submit(runtime)
    first = await claim_exactly(runtime, task.id, "worker-a")
    async with runtime.sessionmaker() as session:  # worker A's lease runs out
        await session.execute(
            update(Task).where(Task.id == task.id).values(lease_expires_at=utcnow() - timedelta(1))
        )
        await session.commit()
    await runtime.lifecycle.reap_expired()
    second = await claim_exactly(runtime, task.id, "worker-b")
    assert (first.attempts, second.attempts) == (1, 2)

    await runner(runtime).run(second, "worker-b")
    await runner(runtime).run(first, "worker-a")  # the late one finishes afterwards

    async with runtime.read_sessionmaker() as session:
        final = await session.get(Task, task.id)
        entries = (
            await session.execute(
                LedgerEntry.__table__.select().where(LedgerEntry.task_id == task.id)
            )
        ).all()
    assert final is not None and final.status == "completed" and final.attempts == 2
    keys = [output["key"] for output in final.result["outputs"]]
    assert all(key.startswith(f"outputs/{task.id}/2/") for key in keys)
    for key in keys:
        path = runtime.storage.local_path(key)
        assert path is not None and path.is_file()
    late = runtime.storage.local_path(f"outputs/{task.id}/1/video-0.mp4")
    assert late is not None and not late.exists()
    assert sorted(e.kind for e in entries) == ["capture", "hold"]
