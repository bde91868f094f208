"""Queries for tasks. Every status change is a compare-and-set on (status, attempts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from framegate.models import Task, TaskStatus, TaskType


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """What a task listing keeps: each given criterion must hold."""

    status: str | None = None
    model: str | None = None
    task_type: str | None = None
    # Created at or after ``created_from`` and before ``created_to``.
    created_from: datetime | None = None
    created_to: datetime | None = None
    # A metadata tag and the value it must have.
    metadata: tuple[str, str] | None = None

    def apply(self, statement: Select[Any]) -> Select[Any]:
        if self.status:
            statement = statement.where(Task.status == self.status)
        if self.model:
            statement = statement.where(Task.model == self.model)
        if self.task_type:
            statement = statement.where(Task.type == self.task_type)
        if self.created_from is not None:
            statement = statement.where(Task.created_at >= self.created_from)
        if self.created_to is not None:
            statement = statement.where(Task.created_at < self.created_to)
        if self.metadata is not None:
            tag, value = self.metadata
            statement = statement.where(Task.task_metadata[tag].as_string() == value)
        return statement


class TaskRepository:
    async def add(self, session: AsyncSession, task: Task) -> Task:
        session.add(task)
        await session.flush()
        return task

    async def get(self, session: AsyncSession, task_id: str) -> Task | None:
        return await session.get(Task, task_id, populate_existing=True)

    async def get_for_account(
        self, session: AsyncSession, account_id: str, task_id: str
    ) -> Task | None:
        statement = select(Task).where(Task.id == task_id, Task.account_id == account_id)
        return (await session.execute(statement)).scalar_one_or_none()

    async def list_for_account(
        self,
        session: AsyncSession,
        account_id: str,
        *,
        limit: int,
        after: str | None = None,
        filters: TaskFilter | None = None,
    ) -> list[Task]:
        # Ids start with their creation time, so id order is newest-first order.
        statement = select(Task).where(Task.account_id == account_id)
        if after:
            statement = statement.where(Task.id < after)
        statement = (filters or TaskFilter()).apply(statement)
        statement = statement.order_by(Task.id.desc()).limit(limit)
        return list((await session.execute(statement)).scalars())

    async def list_unpurged_videos(
        self,
        session: AsyncSession,
        account_id: str,
        *,
        limit: int,
        after: str | None,
        order: Literal["asc", "desc"],
    ) -> list[Task]:
        """Video tasks whose files are not purged (the OpenAI dialect's videos), in id order
        either way; the (account_id, id) index serves it."""
        statement = select(Task).where(
            Task.account_id == account_id,
            Task.type == TaskType.video_generation,
            Task.purged_at.is_(None),
        )
        if after:
            statement = statement.where(Task.id > after if order == "asc" else Task.id < after)
        statement = statement.order_by(Task.id.asc() if order == "asc" else Task.id.desc())
        return list((await session.execute(statement.limit(limit))).scalars())

    async def next_queued_id(self, session: AsyncSession) -> str | None:
        statement = (
            select(Task.id)
            .where(Task.status == TaskStatus.queued)
            .order_by(Task.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        return (await session.execute(statement)).scalar_one_or_none()

    async def get_by_number(self, session: AsyncSession, number: int) -> Task | None:
        statement = select(Task).where(Task.number == number)
        return (await session.execute(statement)).scalar_one_or_none()

    async def next_due_parked_id(self, session: AsyncSession, now: datetime) -> str | None:
        """The parked upstream task whose next poll is the most overdue."""
        statement = (
            select(Task.id)
            .where(
                Task.status == TaskStatus.processing,
                Task.worker_id.is_(None),
                Task.lease_expires_at <= now,
            )
            .order_by(Task.lease_expires_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        return (await session.execute(statement)).scalar_one_or_none()

    async def compare_and_set(
        self,
        session: AsyncSession,
        task_id: str,
        *,
        status: str | tuple[str, ...],
        attempts: int | None = None,
        worker_id: str | None = None,
        unclaimed: bool = False,
        lease_expired_before: datetime | None = None,
        values: dict[str, Any],
    ) -> bool:
        """Apply ``values`` only if the task is still in ``status`` (and attempt/worker;
        ``unclaimed``: no worker holds it; ``lease_expired_before``: its lease ran out
        before then)."""
        statuses = (status,) if isinstance(status, str) else status
        statement = update(Task).where(Task.id == task_id, Task.status.in_(statuses))
        if attempts is not None:
            statement = statement.where(Task.attempts == attempts)
        if worker_id is not None:
            statement = statement.where(Task.worker_id == worker_id)
        if unclaimed:
            statement = statement.where(Task.worker_id.is_(None))
        if lease_expired_before is not None:
            statement = statement.where(Task.lease_expires_at < lease_expired_before)
        result = await session.execute(
            statement.values(**values).execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def overdue(self, session: AsyncSession, now: datetime) -> list[Task]:
        statement = select(Task).where(
            Task.status.in_([TaskStatus.queued, TaskStatus.processing]), Task.deadline_at < now
        )
        return list((await session.execute(statement)).scalars())

    async def expired_outputs(self, session: AsyncSession, now: datetime, limit: int) -> list[Task]:
        statement = (
            select(Task)
            .where(Task.purged_at.is_(None), Task.expires_at < now)
            .order_by(Task.expires_at)
            .limit(limit)
        )
        return list((await session.execute(statement)).scalars())

    async def expired_leases(self, session: AsyncSession, now: datetime) -> list[Task]:
        # Parked upstream tasks (no worker) are not lost: their "lease" is the next poll.
        statement = select(Task).where(
            Task.status == TaskStatus.processing,
            Task.worker_id.is_not(None),
            Task.lease_expires_at < now,
        )
        return list((await session.execute(statement)).scalars())


task_repository = TaskRepository()
