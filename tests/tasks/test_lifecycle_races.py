"""Racing transitions and the reaper: what one transition at a time (the property in
test_ledger_properties) cannot show."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from framegate.models import LedgerEntry, Task, TaskStatus
from framegate.runtime import Runtime
from tests.tasks.ledger_model import (
    Driver,
    Expected,
    a_while_ago,
    assert_database_agrees,
    close_open_tasks,
    open_account,
    set_task,
    submit_clip,
)

RACE_ROUNDS = 15


def test_racing_transitions_take_effect_once(driver: Driver) -> None:
    """Transitions that exclude each other, started at the same moment: exactly one takes
    effect, and the ledger shows it once. The property in test_ledger_properties applies
    transitions one after another; here the database orders them (rounds repeat, as who
    wins varies)."""
    try:
        for _ in range(RACE_ROUNDS):
            driver.run(_race_round(driver.runtime))
    finally:
        driver.run(close_open_tasks(driver.runtime))


async def _race_round(runtime: Runtime) -> None:
    lifecycle = runtime.lifecycle
    auth = await open_account(runtime, 100)
    account_id = auth.account.id
    tasks: dict[str, Expected] = {}

    async def submit(seconds: int) -> Expected:
        task = await submit_clip(runtime, auth, seconds, "64x64")
        tasks[task.id] = Expected(task.id, seconds)
        return tasks[task.id]

    def claimed(task: Task, worker: str) -> Task:
        tasks[task.id].claimed(0, worker)
        tasks[task.id].attempts += 1
        return task

    async def claim(worker: str, expected: Expected) -> Task:
        task = await lifecycle.claim(worker)
        assert task is not None and task.id == expected.id
        return claimed(task, worker)

    # Three workers claim at once, two tasks are queued: each task goes to one of them.
    first, second = await submit(1), await submit(2)
    workers = ("worker-a", "worker-b", "worker-c")
    got = await asyncio.gather(*(lifecycle.claim(worker) for worker in workers))
    won = {task.id: claimed(task, w) for w, task in zip(workers, got, strict=True) if task}
    assert sorted(won) == sorted([first.id, second.id]), got

    # The worker completes while the client cancels.
    task = won[first.id]
    completed, after = await asyncio.gather(
        lifecycle.complete(task, first.worker or "", {"outputs": []}, 1),
        lifecycle.cancel(account_id, first.id),
    )
    assert after is not None
    assert after.status == (TaskStatus.completed if completed else TaskStatus.cancelled)
    if completed:
        first.finish(TaskStatus.completed)
        first.progress, first.used = 100, 1
    else:
        first.finish(TaskStatus.cancelled)

    # A late worker renews its run-out lease while the reaper passes.
    task = won[second.id]
    await set_task(runtime, second.id, lease_expires_at=a_while_ago())
    renewed, reaped = await asyncio.gather(
        lifecycle.renew(task, second.worker or "", 30), lifecycle.reap_expired()
    )
    assert renewed != bool(reaped), f"renewed {renewed} and reaped {reaped}"
    if renewed:
        second.progress = 30
    else:
        second.requeue()
        await lifecycle.cancel(account_id, second.id)
        second.finish(TaskStatus.cancelled)

    # The worker completes as the deadline sweep fails the task.
    third = await submit(3)
    task = await claim("worker-c", third)
    await set_task(runtime, third.id, deadline_at=a_while_ago())
    completed, timed_out = await asyncio.gather(
        lifecycle.complete(task, "worker-c", {"outputs": []}, 3), lifecycle.expire_overdue()
    )
    assert completed != bool(timed_out), f"completed {completed} and timed out {timed_out}"
    third.finish(TaskStatus.completed if completed else TaskStatus.failed)
    if completed:
        third.progress, third.used = 100, 3

    # The worker fails the task while the client cancels it, twice.
    fourth = await submit(4)
    task = await claim("worker-a", fourth)
    failed, *cancels = await asyncio.gather(
        lifecycle.fail(task, "engine_error", "broken", worker_id="worker-a"),
        lifecycle.cancel(account_id, fourth.id),
        lifecycle.cancel(account_id, fourth.id),
    )
    final = TaskStatus.failed if failed else TaskStatus.cancelled
    assert [c.status if c else None for c in cancels] == [final, final]
    fourth.finish(final)

    for expected in tasks.values():
        if expected.is_open:
            await lifecycle.cancel(account_id, expected.id)
            expected.finish(TaskStatus.cancelled)
    await assert_database_agrees(runtime, account_id, 100, tasks)


# -- the reaper acts on what it read a moment before (found by the property) ---------------


def _lost_task(driver: Driver) -> Task:
    """A task claimed by worker-a whose lease has run out."""
    runtime = driver.runtime

    async def lose() -> Task:
        auth = await open_account(runtime, 10)
        submitted = await submit_clip(runtime, auth, 1, "64x64")
        claimed = await runtime.lifecycle.claim("worker-a")
        assert claimed is not None and claimed.id == submitted.id
        await set_task(runtime, claimed.id, lease_expires_at=a_while_ago())
        return claimed

    return driver.run(lose())


def _current(driver: Driver, task_id: str) -> tuple[str, str | None, int, list[str]]:
    async def read() -> tuple[str, str | None, int, list[str]]:
        async with driver.runtime.read_sessionmaker() as session:
            task = await session.get(Task, task_id)
            kinds = await session.scalars(
                select(LedgerEntry.kind).where(LedgerEntry.task_id == task_id)
            )
            assert task is not None
            return task.status, task.worker_id, task.attempts, sorted(kinds)

    return driver.run(read())


def test_reaper_spares_a_lease_renewed_after_it_read_it(driver: Driver) -> None:
    """The reaper read the lease as run out; its worker, late but alive, renewed it before
    the reaper acted. The task stays with its worker (it used to be requeued, and failed
    outright on its last attempt)."""
    lifecycle = driver.runtime.lifecycle
    task = _lost_task(driver)
    try:
        [read] = driver.run(lifecycle.expired_leases())
        assert driver.run(lifecycle.renew(task, "worker-a", 40))
        assert not driver.run(lifecycle.reap(read))
        assert _current(driver, task.id) == ("processing", "worker-a", 1, ["hold"])
        assert driver.run(lifecycle.reap_expired()) == 0
    finally:
        driver.run(close_open_tasks(driver.runtime))


def test_reaper_spares_a_task_parked_since_it_read_it(driver: Driver) -> None:
    """The reaper read the lease as run out; meanwhile the worker parked the task for an
    upstream poll that is due at once (so its "lease" is in the past too), and then another
    worker took that poll up, at the same attempt. Neither is a lost lease."""
    lifecycle = driver.runtime.lifecycle
    task = _lost_task(driver)
    try:
        [read] = driver.run(lifecycle.expired_leases())
        parked = lifecycle.park(
            task,
            "worker-a",
            until=a_while_ago(),
            progress=10,
            upstream={"route": "preview"},
            engine_task_id="upstream-1",
        )
        assert driver.run(parked)
        assert not driver.run(lifecycle.reap(read))
        assert _current(driver, task.id) == ("processing", None, 1, ["hold"])
        assert driver.run(lifecycle.claim_due("worker-b")) is not None
        assert not driver.run(lifecycle.reap(read))
        assert _current(driver, task.id) == ("processing", "worker-b", 1, ["hold"])
    finally:
        driver.run(close_open_tasks(driver.runtime))


def test_reaper_requeues_a_lease_still_run_out(driver: Driver) -> None:
    lifecycle = driver.runtime.lifecycle
    task = _lost_task(driver)
    try:
        [read] = driver.run(lifecycle.expired_leases())
        assert driver.run(lifecycle.reap(read))
        assert _current(driver, task.id) == ("queued", None, 1, ["hold"])
        assert not driver.run(lifecycle.renew(task, "worker-a", 50))
    finally:
        driver.run(close_open_tasks(driver.runtime))
