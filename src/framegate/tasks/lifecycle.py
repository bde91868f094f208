"""Task state transitions after submission: claim, renew, complete, fail, retry, reap.

Each is one short transaction around a compare-and-set on the task's status and attempt,
with the credit movement in the same transaction, so two workers, a cancel and the reaper
can race without double effects.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from framegate.credits.service import credit_service
from framegate.db import after_commit, transaction
from framegate.dispatch.jobs import EmbeddedQueue, JobQueue
from framegate.kit.cluster import ClusterBus
from framegate.kit.time import as_utc, utcnow
from framegate.models import Task, TaskStatus
from framegate.tasks.repository import task_repository
from framegate.tasks.signals import TaskSignals

log = logging.getLogger(__name__)


class TaskEventSink(Protocol):
    """Told of task events inside the transaction that makes them (the outbox pattern):
    what it writes commits, or rolls back, together with the state change."""

    async def task_finished(self, session: AsyncSession, task: Task) -> None:
        """The task just became completed, failed or cancelled (see ``task.status``)."""
        ...

    async def task_progressed(self, session: AsyncSession, task: Task, progress: int) -> None:
        """A running task's progress was recorded."""
        ...


class TaskLifecycle:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        signals: TaskSignals,
        *,
        read_sessionmaker: async_sessionmaker[AsyncSession],
        lease_seconds: float,
        max_attempts: int,
        retention_days: float,
        queue: JobQueue | None = None,
        bus: ClusterBus | None = None,
    ) -> None:
        # Task changes reach the other processes' watchers (SSE streams, caches).
        self._bus = bus or ClusterBus(None)
        self._sessionmaker = sessionmaker
        self._queue: JobQueue = queue or EmbeddedQueue(signals)
        self._read_sessionmaker = read_sessionmaker
        self._signals = signals
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self._retention = timedelta(days=retention_days)
        self._sinks: list[TaskEventSink] = []

    def add_sink(self, sink: TaskEventSink) -> None:
        self._sinks.append(sink)

    async def enqueue(self, session: AsyncSession, task: Task) -> None:
        """Make a newly queued task reach a worker when ``session`` commits."""
        await self.enqueue_id(session, task.id, _serving_route(task, {}))

    async def enqueue_id(self, session: AsyncSession, task_id: str, route_id: str) -> None:
        await self._queue.enqueue(session, task_id, route_id)

    def _lease_end(self) -> Any:
        return utcnow() + timedelta(seconds=self.lease_seconds)

    async def claim(self, worker_id: str, task_id: str | None = None) -> Task | None:
        """Take the oldest queued task (or ``task_id``, if it is queued): queued →
        processing, attempts + 1."""
        async with transaction(self._sessionmaker) as session:
            task_id = task_id or await task_repository.next_queued_id(session)
            if task_id is None:
                return None
            task = await task_repository.get(session, task_id)
            if task is None:
                return None
            now = utcnow()
            claimed = await self._transition(
                session,
                task_id,
                status=TaskStatus.queued,
                attempts=task.attempts,
                values={
                    "status": TaskStatus.processing,
                    "attempts": task.attempts + 1,
                    "worker_id": worker_id,
                    "lease_expires_at": self._lease_end(),
                    "started_at": now,
                    "updated_at": now,
                    "progress": 0,
                },
            )
            if not claimed:
                return None
            task = await task_repository.get(session, task_id)
        return task

    async def claim_due(self, worker_id: str, task_id: str | None = None) -> Task | None:
        """Take a parked upstream task whose next poll is due, or ``task_id`` if it is
        parked (its poll's scheduled job decides when): no attempt is used."""
        async with transaction(self._sessionmaker) as session:
            task_id = task_id or await task_repository.next_due_parked_id(session, utcnow())
            if task_id is None:
                return None
            task = await task_repository.get(session, task_id)
            if task is None:
                return None
            claimed = await task_repository.compare_and_set(
                session,
                task_id,
                status=TaskStatus.processing,
                attempts=task.attempts,
                unclaimed=True,
                values={"worker_id": worker_id, "lease_expires_at": self._lease_end()},
            )
            if not claimed:
                return None
            task = await task_repository.get(session, task_id)
        return task

    async def park(
        self,
        task: Task,
        worker_id: str,
        *,
        until: datetime,
        progress: int,
        upstream: dict[str, Any],
        engine_task_id: str | None,
    ) -> bool:
        """Let go of an upstream task until ``until`` (its next poll), keeping it processing:
        no worker slot is held while the vendor works."""
        values: dict[str, Any] = {
            "worker_id": None,
            "lease_expires_at": until,
            "upstream": upstream,
            "engine_task_id": engine_task_id,
        }
        return await self._record_progress(
            task, worker_id, progress, values, always=False, due=until
        )

    async def reroute(self, task: Task, worker_id: str, upstream: dict[str, Any]) -> bool:
        """Move a task to another route (a fallback): back to queued, no upstream job; the
        attempt it used does not count."""
        return await self._requeue(
            task,
            worker_id,
            {"upstream": upstream, "engine_task_id": None, "attempts": task.attempts - 1},
        )

    async def renew(self, task: Task, worker_id: str, progress: int) -> bool:
        """Extend the lease and record progress; False once the task is no longer ours."""
        values: dict[str, Any] = {"lease_expires_at": self._lease_end()}
        return await self._record_progress(task, worker_id, progress, values, always=True)

    async def _record_progress(
        self,
        task: Task,
        worker_id: str,
        progress: int,
        values: dict[str, Any],
        *,
        always: bool,
        due: datetime | None = None,
    ) -> bool:
        """Set ``values`` and ``progress`` on a task still ours; the sinks hear of the progress
        (``always``, or when it changed). ``due``: parked until then, when its next step is
        enqueued."""
        async with transaction(self._sessionmaker) as session:
            done = await self._update_if_ours(
                session,
                task,
                worker_id,
                values={**values, "progress": progress, "updated_at": utcnow()},
            )
            if done and (always or progress != task.progress):
                for sink in self._sinks:
                    await sink.task_progressed(session, task, progress)
            if done and due is not None:
                await self._queue.enqueue(session, task.id, _serving_route(task, values), at=due)
        return done

    async def complete(
        self,
        task: Task,
        worker_id: str,
        result: dict[str, Any],
        credits_used: int,
        *,
        served_by: str | None = None,
    ) -> bool:
        now = utcnow()
        async with transaction(self._sessionmaker) as session:
            done = await self._update_if_ours(
                session,
                task,
                worker_id,
                values={
                    "status": TaskStatus.completed,
                    "progress": 100,
                    "result": result,
                    "served_by": served_by or task.model,
                    "completed_at": now,
                    "updated_at": now,
                    "lease_expires_at": None,
                    "processing_ms": _elapsed_ms(task, now),
                    "expires_at": now + self._retention,
                },
            )
            if done:
                await self._settle(session, task.id, capture=credits_used)
        return done

    async def fail(
        self,
        task: Task,
        code: str,
        message: str,
        *,
        worker_id: str | None = None,
        from_status: TaskStatus | tuple[TaskStatus, ...] = TaskStatus.processing,
        any_attempt: bool = False,
        lease_expired_before: datetime | None = None,
    ) -> bool:
        """→ failed, with the whole hold released (the failure costs nothing)."""
        now = utcnow()
        async with transaction(self._sessionmaker) as session:
            done = await self._transition(
                session,
                task.id,
                status=from_status,
                attempts=None if any_attempt else task.attempts,
                worker_id=worker_id,
                lease_expired_before=lease_expired_before,
                values={
                    "status": TaskStatus.failed,
                    "error_code": code,
                    "error_message": message[:2000],
                    "completed_at": now,
                    "updated_at": now,
                    "lease_expires_at": None,
                    "processing_ms": _elapsed_ms(task, now),
                },
            )
            if done:
                await self._settle(session, task.id, release=f"refund: {code}")
        return done

    async def retry(self, task: Task, reason: str, *, worker_id: str | None = None) -> bool:
        """processing → queued for another attempt (the hold stays in place)."""
        return await self._requeue(task, worker_id, {"error_message": reason[:2000]})

    async def hand_back(self, task: Task, worker_id: str) -> bool:
        """processing → queued on a clean shutdown; the attempt does not count."""
        return await self._requeue(task, worker_id, {"attempts": task.attempts - 1})

    async def _requeue(
        self,
        task: Task,
        worker_id: str | None,
        extra_values: dict[str, Any],
        *,
        lease_expired_before: datetime | None = None,
    ) -> bool:
        async with transaction(self._sessionmaker) as session:
            done = await self._update_if_ours(
                session,
                task,
                worker_id,
                lease_expired_before=lease_expired_before,
                values={
                    "status": TaskStatus.queued,
                    "worker_id": None,
                    "lease_expires_at": None,
                    "progress": 0,
                    "updated_at": utcnow(),
                    **extra_values,
                },
            )
            if done:
                await self._queue.enqueue(session, task.id, _serving_route(task, extra_values))
        return done

    async def cancel(self, account_id: str, task_id: str) -> Task | None:
        """queued or processing → cancelled, hold released; the task as it now is (None when
        it is not this account's). A processing task's worker sees it at its next lease
        renewal and stops its engine at the next step."""
        async with transaction(self._sessionmaker) as session:
            task = await task_repository.get(session, task_id)
            if task is None or task.account_id != account_id:
                return None
            if TaskStatus(task.status).is_terminal():
                return task
            now = utcnow()
            done = await self._transition(
                session,
                task.id,
                status=(TaskStatus.queued, TaskStatus.processing),
                values={
                    "status": TaskStatus.cancelled,
                    "completed_at": now,
                    "updated_at": now,
                    "lease_expires_at": None,
                    "processing_ms": _elapsed_ms(task, now),
                },
            )
            if done:
                await self._settle(session, task.id, release="refund: cancelled")
            task = await task_repository.get(session, task_id)
        return task

    async def expire_overdue(self) -> int:
        """Tasks still queued or processing past their deadline: failed with `timeout`."""
        async with self._read_sessionmaker() as session:
            overdue = await task_repository.overdue(session, utcnow())
        handled = 0
        for task in overdue:
            if await self.fail(
                task,
                "timeout",
                "The task did not finish before its deadline; the credits were refunded.",
                from_status=(TaskStatus.queued, TaskStatus.processing),
                any_attempt=True,
            ):
                handled += 1
        return handled

    async def reap_expired(self) -> int:
        """Tasks whose worker stopped renewing: retried while attempts remain, else failed."""
        handled = 0
        for task in await self.expired_leases():
            if await self.reap(task):
                handled += 1
        return handled

    async def expired_leases(self) -> list[Task]:
        """Claimed tasks whose lease has run out (parked upstream tasks have no worker)."""
        async with self._read_sessionmaker() as session:
            return await task_repository.expired_leases(session, utcnow())

    async def reap(self, task: Task) -> bool:
        """Retry ``task``, as expired_leases read it, while attempts remain, else fail it.

        Only if it is still that worker's, at that attempt, with the lease still run out:
        between the read and this, its worker may have renewed (it was late, not lost),
        or parked it and another worker taken it up at the same attempt."""
        now = utcnow()
        if task.attempts < self.max_attempts:
            ok = await self._requeue(
                task,
                task.worker_id,
                {"error_message": "worker lost; retrying"},
                lease_expired_before=now,
            )
        else:
            ok = await self.fail(
                task,
                "worker_lost",
                f"The worker processing this task stopped after {task.attempts} attempt(s); "
                "the credits were refunded.",
                worker_id=task.worker_id,
                lease_expired_before=now,
            )
        if ok:
            log.warning("reaped task %s (attempt %s)", task.id, task.attempts)
        return ok

    async def _transition(self, session: AsyncSession, task_id: str, **cas: Any) -> bool:
        """task_repository.compare_and_set with ``cas``'s conditions and values; when it
        applies, the task's watchers are told once the transaction commits."""
        done = await task_repository.compare_and_set(session, task_id, **cas)
        if done:
            after_commit(session, functools.partial(self._signals.task_changed, task_id))
            if self._bus.distributed:
                await self._bus.publish(session, "task", task_id)
        return done

    async def _update_if_ours(
        self,
        session: AsyncSession,
        task: Task,
        worker_id: str | None,
        *,
        values: dict[str, Any],
        lease_expired_before: datetime | None = None,
    ) -> bool:
        """Apply ``values`` only while ``task`` is still processing at the same attempt and
        held by ``worker_id`` (any worker when None)."""
        return await self._transition(
            session,
            task.id,
            status=TaskStatus.processing,
            attempts=task.attempts,
            worker_id=worker_id,
            lease_expired_before=lease_expired_before,
            values=values,
        )

    async def _settle(
        self,
        session: AsyncSession,
        task_id: str,
        *,
        capture: int | None = None,
        release: str | None = None,
    ) -> None:
        task = await task_repository.get(session, task_id)
        if task is None:
            return
        if capture is not None:
            await credit_service.capture(session, task, capture)
        if release is not None:
            await credit_service.release(session, task, release)
        for sink in self._sinks:
            await sink.task_finished(session, task)


def _elapsed_ms(task: Task, now: Any) -> int | None:
    if task.started_at is None:
        return None
    return max(0, int((now - as_utc(task.started_at)).total_seconds() * 1000))


def _serving_route(task: Task, values: dict[str, Any]) -> str:
    """The route whose workers take the task's next step: the one it was moved to (a
    fallback, in ``values`` or on the task), else its model."""
    upstream = values.get("upstream", task.upstream) or {}
    route: str = upstream.get("route") or task.model
    return route
