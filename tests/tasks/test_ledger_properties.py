"""Property: however submissions, cancels, the steps of several workers (current, stale or
forgotten runs), parked upstream polls, fallbacks, lease expiries with reaper passes (a
reaper acting on what it read a moment before included) and deadlines interleave, the task
table and the credit ledger agree.

A model of every task (status, attempts, which claim holds it) runs beside the real
lifecycle on a real database. After every step that touched the database: the ledger sums to
the balance; each task has exactly one hold and, once finished, exactly the capture or
release its status calls for; the balance is the opening grant less what completed tasks
spent and open tasks hold; status, attempts, worker and progress are the model's. Every
compare-and-set a worker makes succeeds only through the claim that currently holds the
task: a stale worker's attempt changes nothing.

The test plays the workers, the reaper and the clock itself (no embedded workers run); time
passes by moving a lease or a deadline into the past in the database. Transitions here run
one after another; test_lifecycle_races starts them at the same moment.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from framegate.credits.service import Balance, InsufficientCredits, credit_service
from framegate.keys.service import AuthContext
from framegate.kit.time import utcnow
from framegate.models import Task, TaskStatus
from tests.tasks.ledger_model import (
    LONG_AGO,
    OPEN,
    Driver,
    Expected,
    T,
    a_while_ago,
    assert_database_agrees,
    available,
    close_open_tasks,
    open_account,
    set_task,
    submit_clip,
)

pytestmark = pytest.mark.slow  # 500 generated scenarios on two databases

# Generated scenarios per backend; both backends together make the suite's 500. A fixed seed
# per backend: different scenarios on each, the same ones on every run.
EXAMPLES_PER_BACKEND = 250
SEEDS = {"sqlite": 1, "postgresql": 2}
STEPS_PER_EXAMPLE = 50
WORKERS = ("worker-a", "worker-b")
# What a worker holding a task does next (see LedgerMachine.work).
WORKER_STEPS = (
    "renew",
    "complete",
    "fail",
    "retriable_error",
    "hand_back",
    "reroute",
    "park",
    "park_until_due",
    "restart",
)
# A price is whole seconds times the resolution tier (the preview route: 480p 1, 720p 2).
SIZES = {"64x64": 1, "1280x720": 2}

index = st.integers(min_value=0, max_value=1 << 16)
clip_seconds = st.integers(min_value=1, max_value=5)


@dataclass
class Claim:
    """A worker's hold on a task: the row as its claim returned it, which the worker passes
    to every later transition (it may have gone stale since)."""

    token: int
    worker: str
    task: Task


class LedgerMachine(RuleBasedStateMachine):
    """Rules check their own applicability instead of using preconditions, so which rules
    hypothesis draws never depends on what the database did: should a run go differently
    (timing), it is reported as such, not as flaky data generation."""

    def __init__(self, driver: Driver) -> None:
        super().__init__()
        self.driver = driver
        self.runtime = driver.runtime
        self.lifecycle = driver.runtime.lifecycle
        self.auth: AuthContext | None = None
        self.opening = 0
        self.tasks: dict[str, Expected] = {}
        # What each worker is running: the claim it works under, which may have gone stale.
        self.slots: dict[str, Claim | None] = dict.fromkeys(WORKERS)
        # Claims from the past: runs that ended, or that their worker forgot.
        self.ghosts: list[Claim] = []
        # Expired leases as a reaper last read them, to act on later (see reaper_reaps).
        self.scanned: list[Task] = []
        self._counter = 0
        self._checked: object = None  # the model as the database was last compared with it

    # -- helpers -----------------------------------------------------------------------------

    def run(self, awaitable: Awaitable[T]) -> T:
        return self.driver.run(awaitable)

    def next_number(self) -> int:
        self._counter += 1
        return self._counter

    @property
    def account_id(self) -> str:
        assert self.auth is not None
        return self.auth.account.id

    def with_status(self, *statuses: TaskStatus) -> list[Expected]:
        return sorted((t for t in self.tasks.values() if t.status in statuses), key=lambda t: t.id)

    def due_parked(self) -> list[Expected]:
        """Parked tasks whose poll is due, the most overdue first."""
        due = [t for t in self.with_status(TaskStatus.processing) if t.parked and t.lapsed]
        return sorted(due, key=lambda t: t.due_order)

    def lost(self) -> list[Expected]:
        """Claimed tasks whose lease ran out: the reaper's."""
        processing = self.with_status(TaskStatus.processing)
        return [t for t in processing if t.lapsed and not t.parked]

    def overdue(self) -> list[Expected]:
        return [t for t in self.with_status(*OPEN) if t.overdue]

    def holds(self, claim: Claim) -> bool:
        """Whether ``claim`` is the one holding its task now (so its transitions apply)."""
        expected = self.tasks[claim.task.id]
        return expected.status == TaskStatus.processing and expected.holder == claim.token

    def take(self, worker: str, task: Task) -> None:
        token = self.next_number()
        self.tasks[task.id].claimed(token, worker)
        self.slots[worker] = Claim(token, worker, task)
        # A past claim of this worker on this task at this attempt is now the same claim to
        # the database. That happens only when the old run itself gave the task back (a
        # hand-back or reroute returns the attempt, a poll uses none), and a worker claims
        # again only once that run has ended: the old claim is gone for good.
        self.ghosts = [
            g
            for g in self.ghosts
            if (g.worker, g.task.id, g.task.attempts) != (worker, task.id, task.attempts)
        ]

    # -- the client --------------------------------------------------------------------------

    @initialize(
        opening=st.integers(min_value=0, max_value=100),
        backlog=st.lists(st.tuples(clip_seconds, st.booleans()), max_size=5),
    )
    def open_account(self, opening: int, backlog: list[tuple[int, bool]]) -> None:
        """A fresh account per scenario, with a few clips submitted before anything else."""
        self.auth = self.run(open_account(self.runtime, opening))
        self.opening = opening
        for seconds, hd in backlog:
            self.submit(seconds, hd)

    @rule(seconds=clip_seconds, hd=st.booleans())
    def submit(self, seconds: int, hd: bool) -> None:
        """A clip holds its price, or is refused (402) with nothing held when the available
        balance does not cover it."""
        size = "1280x720" if hd else "64x64"
        price = seconds * SIZES[size]
        auth = self.auth
        assert auth is not None

        async def create() -> Task | None:
            try:
                return await submit_clip(self.runtime, auth, seconds, size)
            except InsufficientCredits:
                return None

        task = self.run(create())
        if task is None:
            assert self.available() < price, "refused although the balance covered the price"
            return
        assert self.available() >= price, "accepted although the balance did not cover it"
        assert task.credits_reserved == price
        self.tasks[task.id] = Expected(task.id, price)

    @rule(pick=index)
    def cancel(self, pick: int) -> None:
        """The client cancels one of its tasks, open or already finished."""
        if not self.tasks:
            return
        expected = self.tasks[sorted(self.tasks)[pick % len(self.tasks)]]
        task = self.run(self.lifecycle.cancel(self.account_id, expected.id))
        if expected.is_open:
            expected.finish(TaskStatus.cancelled)
        assert task is not None and task.status == expected.status

    # -- the workers -------------------------------------------------------------------------

    @rule(
        worker=st.sampled_from(WORKERS),
        step=st.sampled_from(WORKER_STEPS),
        progress=st.integers(min_value=0, max_value=99),
        used=st.integers(min_value=0, max_value=12),
    )
    def work(self, worker: str, step: str, progress: int, used: int) -> None:
        """The worker's next move: an idle one looks for a task; a busy one takes ``step``
        under its claim, which may have gone stale. Its run ends (the slot frees) once the
        task is finished or let go, or a transition tells it the task is no longer its."""
        claim = self.slots[worker]
        if claim is None:
            self.look_for_work(worker)
        elif step == "restart":
            self.restart(worker, claim)
        elif not self.step(claim, step, progress, used):
            self.slots[worker] = None

    def restart(self, worker: str, claim: Claim) -> None:
        """The worker hung past its lease and was restarted under the same id: it forgets
        its run, which is not dead though and may take a step later (see ghost_steps)."""
        self.slots[worker] = None
        self.ghosts.append(claim)
        expected = self.tasks[claim.task.id]
        if self.holds(claim):
            self.run(set_task(self.runtime, expected.id, lease_expires_at=a_while_ago()))
            expected.lapsed = True
            self.reaper_reads()

    @rule(
        pick=index,
        step=st.sampled_from(WORKER_STEPS),
        progress=st.integers(min_value=0, max_value=99),
        used=st.integers(min_value=0, max_value=12),
    )
    def ghost_steps(self, pick: int, step: str, progress: int, used: int) -> None:
        """A claim from the past takes a step: a run its worker forgot, a heartbeat still in
        flight when its run let the task go, or a late duplicate of a run's last transition.
        It changes nothing unless the claim still holds the task."""
        # Those whose task is in other hands now first: what the guards are there for.
        elsewhere = [g for g in self.ghosts if self.tasks[g.task.id].holder not in (None, g.token)]
        ghosts = elsewhere or self.ghosts
        if not ghosts or step == "restart":
            return
        self.step(ghosts[-1 - pick % len(ghosts)], step, progress, used)  # the latest first

    @rule(progress=st.integers(min_value=0, max_value=99))
    def heartbeats(self, progress: int) -> None:
        """Every busy worker renews its lease, as heartbeats do all the time (a stale claim
        learns here that the task is no longer its)."""
        for worker, claim in self.slots.items():
            if claim is not None and not self.step(claim, "renew", progress, 0):
                self.slots[worker] = None

    def step(self, claim: Claim, step: str, progress: int, used: int) -> bool:
        """One transition under ``claim``; whether its run goes on (only after a renewal
        that went through). A run that ends leaves its claim among the ghosts."""
        holds = self.holds(claim)
        if step == "renew":
            ok = self.renew(claim, progress)
        elif step == "complete":
            ok = self.complete(claim, used)
        elif step in ("fail", "retriable_error"):
            ok = self.engine_error(claim, retriable=step == "retriable_error")
        elif step in ("hand_back", "reroute"):
            ok = self.give_back(claim, reroute=step == "reroute")
        else:
            ok = self.park(claim, progress, due=step == "park_until_due")
        assert ok == holds, f"{step} under claim {claim.token}: {ok}, but holds={holds}"
        if ok and step == "renew":
            return True
        if claim not in self.ghosts:
            self.ghosts.append(claim)
        return False

    def look_for_work(self, worker: str) -> None:
        """As the embedded dispatcher does: a parked task whose poll is due first (no attempt
        is used), else the oldest queued task (attempts + 1)."""
        due, queued = self.due_parked(), self.with_status(TaskStatus.queued)
        if not due and not queued:
            return

        async def claim() -> tuple[Task | None, Task | None]:
            parked = await self.lifecycle.claim_due(worker)
            return parked, None if parked is not None else await self.lifecycle.claim(worker)

        parked, task = self.run(claim())
        if due:
            assert parked is not None and parked.id == due[0].id, "not the most overdue poll"
            self.take(worker, parked)
            return
        assert parked is None
        # The oldest queued task (ids sort by creation time).
        assert task is not None and task.id == queued[0].id, "not the oldest queued task"
        self.tasks[task.id].attempts += 1
        self.tasks[task.id].progress = 0
        self.take(worker, task)

    def renew(self, claim: Claim, progress: int) -> bool:
        """The heartbeat: extend the lease, record progress."""
        ok = self.run(self.lifecycle.renew(claim.task, claim.worker, progress))
        if ok:
            expected = self.tasks[claim.task.id]
            expected.progress = progress
            expected.lapsed = False
        return ok

    def complete(self, claim: Claim, used: int) -> bool:
        ok = self.run(self.lifecycle.complete(claim.task, claim.worker, {"outputs": []}, used))
        if ok:
            self.completed(self.tasks[claim.task.id], used)
        return ok

    def completed(self, expected: Expected, used: int) -> None:
        expected.finish(TaskStatus.completed)
        expected.progress = 100
        expected.used = min(used, expected.price)  # never more than was held

    def engine_error(self, claim: Claim, *, retriable: bool) -> bool:
        """What the runner does with an engine error: a retriable one gets another attempt
        while any remain; otherwise the task fails."""
        retried = retriable and claim.task.attempts < self.lifecycle.max_attempts
        if retried:
            ok = self.run(self.lifecycle.retry(claim.task, "flaky", worker_id=claim.worker))
        else:
            ok = self.run(
                self.lifecycle.fail(claim.task, "engine_error", "broken", worker_id=claim.worker)
            )
        if ok:
            expected = self.tasks[claim.task.id]
            if retried:
                expected.requeue()
            else:
                expected.finish(TaskStatus.failed)
        return ok

    def give_back(self, claim: Claim, *, reroute: bool) -> bool:
        """Back to queued without using up the attempt: a clean shutdown hands the task
        back, or a fallback route takes it over."""
        if reroute:
            upstream = {"route": "preview", "tried": ["elsewhere"], "price": 1}
            ok = self.run(self.lifecycle.reroute(claim.task, claim.worker, upstream))
        else:
            ok = self.run(self.lifecycle.hand_back(claim.task, claim.worker))
        if ok:
            expected = self.tasks[claim.task.id]
            expected.requeue(attempts=expected.attempts - 1)
        return ok

    def park(self, claim: Claim, progress: int, *, due: bool) -> bool:
        """An upstream job was submitted: the worker lets go until the next poll (already
        due, or an hour away)."""
        until = utcnow() + (-LONG_AGO if due else timedelta(hours=1))
        ok = self.run(
            self.lifecycle.park(
                claim.task,
                claim.worker,
                until=until,
                progress=progress,
                upstream={"route": "preview", "job": {}},
                engine_task_id=f"upstream-{claim.task.id}",
            )
        )
        if ok:
            expected = self.tasks[claim.task.id]
            expected.holder = None
            expected.worker = None
            expected.parked = True
            expected.lapsed = due
            expected.due_order = self.next_number()
            expected.progress = progress
        return ok

    # -- the clock and the reaper ------------------------------------------------------------

    @rule(pick=index, deadline=st.booleans())
    def time_passes(self, pick: int, deadline: bool) -> None:
        """For one task: its deadline passes, or its lease (parked: its next poll) runs out
        and a reaper reads the leases that ran out (to act on them later: reaper_reaps)."""
        candidates = self.with_status(*OPEN) if deadline else self.with_status(OPEN[1])
        if not candidates:
            return
        expected = candidates[pick % len(candidates)]
        if deadline:
            self.run(set_task(self.runtime, expected.id, deadline_at=a_while_ago()))
            expected.overdue = True
            return
        self.run(set_task(self.runtime, expected.id, lease_expires_at=a_while_ago()))
        expected.lapsed = True
        expected.due_order = self.next_number()
        self.reaper_reads()

    def reaper_reads(self) -> None:
        found = self.run(self.lifecycle.expired_leases())
        assert sorted(t.id for t in found) == [t.id for t in self.lost()]
        self.scanned = found

    @rule(pick=index)
    def reaper_reaps(self, pick: int) -> None:
        """The reaper acts on one lease it read as expired: a retry while attempts remain,
        else a failure; nothing at all if since then the lease was renewed, the task was
        let go, or it is another worker's or attempt's."""
        if not self.scanned:
            return
        task = self.scanned.pop(pick % len(self.scanned))
        expected = self.tasks[task.id]
        still_lost = (expected.status, expected.worker, expected.attempts, expected.lapsed) == (
            TaskStatus.processing,
            task.worker_id,
            task.attempts,
            True,
        )
        reaped = self.run(self.lifecycle.reap(task))
        assert reaped == still_lost, f"reaped {reaped}, but the lease was lost: {still_lost}"
        if reaped and expected.attempts < self.lifecycle.max_attempts:
            expected.requeue()
        elif reaped:
            expected.finish(TaskStatus.failed)

    @rule()
    def reaper_pass(self) -> None:
        """As the embedded reaper does: lost leases are retried while attempts remain, else
        failed; then whatever is past its deadline fails with `timeout`."""
        lost = self.lost()
        if not lost and not self.overdue():
            return
        reaped = self.run(self.lifecycle.reap_expired())
        assert reaped == len(lost)
        for expected in lost:
            if expected.attempts < self.lifecycle.max_attempts:
                expected.requeue()
            else:
                expected.finish(TaskStatus.failed)
        overdue = self.overdue()
        timed_out = self.run(self.lifecycle.expire_overdue())
        assert timed_out == len(overdue)
        for expected in overdue:
            expected.finish(TaskStatus.failed)

    # -- what must hold ----------------------------------------------------------------------

    def available(self) -> int:
        return available(self.opening, self.tasks.values())

    @invariant()
    def ledger_agrees(self) -> None:
        """Compared after every step that changed the model. A step the model expects to
        change nothing (a stale claim's transition, a refused submission) is not compared
        on its own: anything it wrote would show at the next comparison or at the end."""
        model = [
            (t.id, t.status, t.attempts, t.worker, t.progress, t.used) for t in self.tasks.values()
        ]
        if self.auth is None or model == self._checked:
            return
        self.run(assert_database_agrees(self.runtime, self.account_id, self.opening, self.tasks))
        self._checked = model

    def teardown(self) -> None:
        # Hypothesis calls this from a `finally`: after a failed step, only clean up, so the
        # step's own failure is what gets reported (and reproduced while shrinking).
        if self.auth is None or sys.exc_info()[1] is not None:
            self.run(close_open_tasks(self.runtime))
            return
        try:
            # The end state, compared whatever the last step was, and the balance as the
            # API reports it (held: what open tasks hold).
            self._checked = None
            self.ledger_agrees()

            async def balance() -> Balance:
                async with self.runtime.read_sessionmaker() as session:
                    return await credit_service.balance(session, self.account_id)

            held = sum(t.price for t in self.tasks.values() if t.is_open)
            assert self.run(balance()) == Balance(available=self.available(), held=held)
        finally:
            self.run(close_open_tasks(self.runtime))


def test_ledger_and_lifecycle_agree_under_any_interleaving(driver: Driver, backend: str) -> None:
    def machine() -> LedgerMachine:
        return LedgerMachine(driver)

    run_state_machine_as_test(
        seed(SEEDS[backend])(machine),
        settings=hypothesis_settings(
            max_examples=EXAMPLES_PER_BACKEND,
            stateful_step_count=STEPS_PER_EXAMPLE,
            database=None,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            print_blob=False,
        ),
    )
