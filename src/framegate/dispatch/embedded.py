"""Embedded dispatch: an in-process worker pool and reaper over the task table."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from framegate.dispatch.worker import TaskRunner
from framegate.kit.ids import process_id
from framegate.tasks.lifecycle import TaskLifecycle
from framegate.tasks.signals import TaskSignals

log = logging.getLogger(__name__)


class EmbeddedDispatcher:
    """N worker coroutines claiming queued tasks, plus the lease reaper.

    Workers wake on an in-process signal when a task is queued, and also poll, so tasks
    queued by another process (or left queued before a restart) are picked up too.
    """

    def __init__(
        self,
        *,
        runner: TaskRunner,
        lifecycle: TaskLifecycle,
        signals: TaskSignals,
        concurrency: int,
        poll_seconds: float,
        reaper_interval_seconds: float,
    ) -> None:
        self._runner = runner
        self._lifecycle = lifecycle
        self._signals = signals
        self._concurrency = concurrency
        self._poll_seconds = poll_seconds
        self._reaper_interval = reaper_interval_seconds
        self._tasks: list[asyncio.Task[None]] = []
        self.instance_id = process_id()

    async def start(self) -> None:
        for index in range(self._concurrency):
            worker_id = f"{self.instance_id}/{index}"
            self._tasks.append(asyncio.create_task(self._work(worker_id), name=worker_id))
        self._tasks.append(asyncio.create_task(self._reap(), name="reaper"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _work(self, worker_id: str) -> None:
        while True:
            try:
                # Parked upstream tasks whose poll is due first: each is one short step.
                task = await self._lifecycle.claim_due(worker_id)
                if task is None:
                    task = await self._lifecycle.claim(worker_id)
            except Exception:
                log.exception("claim failed")
                task = None
            if task is None:
                await self._signals.wait_for_queued(self._poll_seconds)
                continue
            try:
                await self._runner.run(task, worker_id)
            except Exception:
                # Never lose the slot: the task itself is recovered by the reaper when its
                # lease runs out.
                log.exception("worker %s: run of %s failed", worker_id, task.id)

    async def _reap(self) -> None:
        while True:
            try:
                await self._lifecycle.reap_expired()
                await self._lifecycle.expire_overdue()
            except Exception:
                log.exception("reaper pass failed")
            await asyncio.sleep(self._reaper_interval)
