"""Periodic housekeeping: outputs and uploads past their retention, expired idempotency keys."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from framegate.db import transaction
from framegate.idempotency.repository import idempotency_repository
from framegate.kit.time import utcnow
from framegate.storage.base import Storage
from framegate.tasks.repository import task_repository
from framegate.tasks.service import TaskService
from framegate.uploads.repository import upload_repository

log = logging.getLogger(__name__)
_BATCH = 200


class RetentionSweeper:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        read_sessionmaker: async_sessionmaker[AsyncSession],
        storage: Storage,
        tasks: TaskService,
        interval_seconds: float,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._read_sessionmaker = read_sessionmaker
        self._storage = storage
        self._tasks = tasks
        self._interval = interval_seconds
        self._loop: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name="retention-sweeper")

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("retention sweep failed")
            await asyncio.sleep(self._interval)

    async def run_once(self) -> int:
        """One pass; returns how many tasks had their files deleted."""
        now = utcnow()
        purged = 0
        while True:
            async with self._read_sessionmaker() as session:
                expired = await task_repository.expired_outputs(session, now, _BATCH)
            for task in expired:
                async with transaction(self._sessionmaker) as session:
                    await self._tasks.purge_outputs(session, task)
                purged += 1
            if len(expired) < _BATCH:
                break
        await self._sweep_uploads(now)
        async with transaction(self._sessionmaker) as session:
            await idempotency_repository.delete_expired(session, now)
        return purged

    async def _sweep_uploads(self, now: datetime) -> None:
        while True:
            async with self._read_sessionmaker() as session:
                expired = await upload_repository.expired(session, now, _BATCH)
            for upload in expired:
                await self._storage.delete_prefix(f"uploads/{upload.id}/")
                async with transaction(self._sessionmaker) as session:
                    await upload_repository.mark_deleted(session, upload.id, now)
            if len(expired) < _BATCH:
                return
