"""A model of tasks and their credits to hold the real lifecycle against, and the runtime
that drives it from synchronous code (see test_ledger_properties and test_lifecycle_races)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select, update

from framegate.keys.service import AuthContext
from framegate.kit.time import utcnow
from framegate.models import Account, LedgerEntry, LedgerKind, Task, TaskStatus
from framegate.runtime import Runtime
from framegate.tasks.schemas import VideoGenerationRequest

T = TypeVar("T")

OPEN = (TaskStatus.queued, TaskStatus.processing)
LONG_AGO = timedelta(minutes=5)


class Driver:
    """A runtime without workers, on a database of its own, driven from synchronous code
    (hypothesis's state machines are synchronous) through a private event loop."""

    def __init__(self, runner: asyncio.Runner, runtime: Runtime) -> None:
        self._runner = runner
        self.runtime = runtime

    def run(self, awaitable: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await awaitable

        return self._runner.run(wrapped())


async def open_account(runtime: Runtime, credits: int) -> AuthContext:
    async with runtime.sessionmaker() as session:
        created = await runtime.accounts.create(session, name="lifecycle model", credits=credits)
        await session.commit()
    return AuthContext(account=created.account, key=created.key.key)


async def submit_clip(runtime: Runtime, auth: AuthContext, seconds: int, size: str) -> Task:
    """A preview clip (``seconds`` x 1 credit at 480p, x 2 at 720p); raises
    InsufficientCredits when the balance does not cover it."""
    body = VideoGenerationRequest(
        model="preview", prompt="lifecycle model", duration=seconds, size=size
    )
    async with runtime.sessionmaker() as session:
        task = await runtime.tasks.submit_video(session, auth, body)
        await session.commit()
    next_millisecond()
    return task


async def set_task(runtime: Runtime, task_id: str, **values: Any) -> None:
    """Time passing, for one task: a lease or deadline moved into the past."""
    async with runtime.sessionmaker() as session:
        await session.execute(update(Task).where(Task.id == task_id).values(**values))
        await session.commit()


def a_while_ago() -> datetime:
    return utcnow() - LONG_AGO


def next_millisecond() -> None:
    """Task ids begin with their creation millisecond, so only tasks made in different
    milliseconds sort by age: waiting for the next one keeps submission order id order
    (claims take the oldest queued task) and every run of a scenario alike."""
    now = time.time_ns() // 1_000_000
    while time.time_ns() // 1_000_000 <= now:
        time.sleep(0.0002)


@dataclass
class Expected:
    """What the model says one task must look like."""

    id: str
    price: int
    status: TaskStatus = TaskStatus.queued
    attempts: int = 0
    progress: int = 0
    holder: int | None = None  # the token of the claim that holds it now
    worker: str | None = None
    parked: bool = False
    # Claimed: its lease ran out. Parked: its next poll is due (since `due_order`).
    lapsed: bool = False
    due_order: int = 0
    overdue: bool = False
    used: int = 0

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    def claimed(self, token: int, worker: str) -> None:
        self.status = TaskStatus.processing
        self.holder = token
        self.worker = worker
        self.parked = False
        self.lapsed = False

    def finish(self, status: TaskStatus) -> None:
        # The row keeps its last worker_id: only a requeue or a park clears it.
        self.status = status
        self.holder = None
        self.parked = False
        self.lapsed = False

    def requeue(self, *, attempts: int | None = None) -> None:
        self.finish(TaskStatus.queued)
        self.worker = None
        self.progress = 0
        if attempts is not None:
            self.attempts = attempts

    def expected_entries(self) -> list[tuple[str, int, int]]:
        """(kind, amount, credits) of each ledger entry this task must have, sorted."""
        entries = [(LedgerKind.hold.value, -self.price, self.price)]
        if self.status == TaskStatus.completed:
            entries.append((LedgerKind.capture.value, 0, self.used))
            if self.price - self.used:
                unused = self.price - self.used
                entries.append((LedgerKind.release.value, unused, unused))
        elif self.status in (TaskStatus.failed, TaskStatus.cancelled):
            entries.append((LedgerKind.release.value, self.price, self.price))
        return sorted(entries)

    @property
    def refunded(self) -> int:
        if self.status == TaskStatus.completed:
            return self.price - self.used
        return 0 if self.is_open else self.price


async def close_open_tasks(runtime: Runtime) -> None:
    """Claims and reaper passes see the whole table: leave nothing open for the next
    scenario or test, whatever happened in this one."""
    async with runtime.sessionmaker() as session:
        await session.execute(
            update(Task).where(Task.status.in_(OPEN)).values(status=TaskStatus.cancelled)
        )
        await session.commit()


def available(opening: int, tasks: Iterable[Expected]) -> int:
    """The grant less what completed tasks spent and open tasks hold."""
    tasks = list(tasks)
    spent = sum(t.used for t in tasks if t.status == TaskStatus.completed)
    held = sum(t.price for t in tasks if t.is_open)
    return opening - spent - held


async def assert_database_agrees(
    runtime: Runtime, account_id: str, opening: int, tasks: dict[str, Expected]
) -> None:
    """The account's balance, ledger and tasks are what the model says."""
    async with runtime.read_sessionmaker() as session:
        rows = await session.execute(
            select(
                Task.id,
                Task.status,
                Task.attempts,
                Task.worker_id,
                Task.progress,
                Task.credits_reserved,
                Task.credits_used,
                Task.credits_refunded,
            ).where(Task.account_id == account_id)
        )
        entries = list(
            await session.execute(
                select(
                    LedgerEntry.task_id, LedgerEntry.kind, LedgerEntry.amount, LedgerEntry.credits
                ).where(LedgerEntry.account_id == account_id)
            )
        )
        balance = await session.scalar(
            select(Account.credit_balance).where(Account.id == account_id)
        )
    assert sum(e.amount for e in entries) == balance, "the ledger does not sum to the balance"
    assert balance == available(opening, tasks.values()), "balance is not grant - spent - held"
    grants = [(e.kind, e.amount) for e in entries if e.task_id is None]
    assert grants == ([(LedgerKind.grant.value, opening)] if opening else [])

    by_task: dict[str, list[tuple[str, int, int]]] = {}
    for e in entries:
        if e.task_id is not None:
            by_task.setdefault(e.task_id, []).append((e.kind, e.amount, e.credits))
    seen_ids = set()
    for row in rows:
        seen_ids.add(row.id)
        expected = tasks[row.id]
        seen = (row.status, row.attempts, row.worker_id, row.progress)
        want = (expected.status, expected.attempts, expected.worker, expected.progress)
        assert seen == want, f"{row.id}: (status, attempts, worker, progress) {seen} != {want}"
        ledger = sorted(by_task.get(row.id, []))
        assert ledger == expected.expected_entries(), f"{row.id} ({row.status}): {ledger}"
        assert (row.credits_reserved, row.credits_used, row.credits_refunded) == (
            expected.price,
            expected.used,
            expected.refunded,
        ), row.id
    assert seen_ids == set(tasks)
