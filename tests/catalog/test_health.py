"""Circuit breakers per route: the rules (both implementations, on a clock the test moves),
and the shared breakers of a distributed installation, two `SharedRouteHealth` standing in
for two processes on one real PostgreSQL database."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from framegate.catalog.health import RouteHealth, SharedRouteHealth
from framegate.db import create_engine, create_sessionmaker, upgrade_database_async
from framegate.kit.cluster import ClusterBus
from framegate.models import RouteBreaker
from tests.conftest import POSTGRES_ADMIN_DSN, pg_admin
from tests.waiting import wait_until

ROUTE = "vendor-route"
FAILURES = 3
COOLDOWN = 60.0


@dataclass
class Clock:
    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Cluster:
    """A database and a clock; ``node()`` is one more process's breakers on them."""

    url: str
    sessionmaker: async_sessionmaker[AsyncSession]
    clock: Clock
    buses: list[ClusterBus]

    async def node(self) -> SharedRouteHealth:
        bus = ClusterBus(self.url)
        health = SharedRouteHealth(
            self.sessionmaker,
            bus,
            failures_to_open=FAILURES,
            cooldown_seconds=COOLDOWN,
            clock=self.clock,
        )
        await health.start()
        await bus.start()
        self.buses.append(bus)
        return health

    async def row(self, route_id: str = ROUTE) -> RouteBreaker | None:
        async with self.sessionmaker() as session:
            return (
                await session.execute(select(RouteBreaker).where(RouteBreaker.route_id == route_id))
            ).scalar_one_or_none()


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    name = f"framegate_breakers_{secrets.token_hex(6)}"
    await pg_admin(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    engine = create_engine(url)
    cluster = Cluster(url, create_sessionmaker(engine), Clock(), [])
    try:
        await upgrade_database_async(url)
        yield cluster
    finally:
        for bus in cluster.buses:
            await bus.stop()
        await engine.dispose()
        await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["in-process", "shared"])
async def breakers(
    request: pytest.FixtureRequest, cluster: Cluster
) -> AsyncIterator[tuple[RouteHealth, Clock]]:
    if request.param == "in-process":
        clock = Clock()
        yield (
            RouteHealth(failures_to_open=FAILURES, cooldown_seconds=COOLDOWN, clock=clock),
            clock,
        )
        return
    yield await cluster.node(), cluster.clock


async def fail(health: RouteHealth, times: int, route_id: str = ROUTE) -> None:
    for _ in range(times):
        await health.failure(route_id)


# -- the rules, both implementations -----------------------------------------------------


async def test_consecutive_failures_open_the_route_until_the_cooldown(
    breakers: tuple[RouteHealth, Clock],
) -> None:
    health, clock = breakers
    assert health.describe(ROUTE).state == "closed" and await health.allow(ROUTE)
    await fail(health, FAILURES - 1)
    assert health.state(ROUTE) == "closed" and await health.allow(ROUTE)
    await fail(health, 1)
    described = health.describe(ROUTE)
    assert (described.state, described.consecutive_failures) == ("open", FAILURES)
    assert described.retry_after == COOLDOWN
    assert not await health.allow(ROUTE) and not health.would_allow(ROUTE)
    clock.now += 45
    assert health.retry_after(ROUTE) == 15 and not await health.allow(ROUTE)
    # Another route is not affected.
    assert health.state("other") == "closed" and await health.allow("other")


async def test_a_success_resets_the_count(breakers: tuple[RouteHealth, Clock]) -> None:
    health, _ = breakers
    await fail(health, FAILURES - 1)
    await health.success(ROUTE)
    await fail(health, FAILURES - 1)
    assert health.state(ROUTE) == "closed"
    assert health.describe(ROUTE).consecutive_failures == FAILURES - 1


async def test_half_open_lets_one_trial_through_and_its_outcome_decides(
    breakers: tuple[RouteHealth, Clock],
) -> None:
    health, clock = breakers
    await fail(health, FAILURES)
    clock.now += COOLDOWN
    assert health.state(ROUTE) == "half_open" and health.would_allow(ROUTE)
    assert health.describe(ROUTE).retry_after is None
    assert await health.allow(ROUTE)  # the trial
    assert not await health.allow(ROUTE) and not health.would_allow(ROUTE)
    # The trial fails: open for another cooldown.
    await health.failure(ROUTE)
    assert health.state(ROUTE) == "open" and health.retry_after(ROUTE) == COOLDOWN
    clock.now += COOLDOWN
    assert await health.allow(ROUTE)
    # This trial succeeds: closed, count reset.
    await health.success(ROUTE)
    described = health.describe(ROUTE)
    assert (described.state, described.consecutive_failures) == ("closed", 0)
    assert await health.allow(ROUTE) and await health.allow(ROUTE)


async def test_a_trial_that_never_reports_is_given_up_after_a_cooldown(
    breakers: tuple[RouteHealth, Clock],
) -> None:
    health, clock = breakers
    await fail(health, FAILURES)
    clock.now += COOLDOWN
    assert await health.allow(ROUTE)
    clock.now += COOLDOWN - 1
    assert not await health.allow(ROUTE)
    clock.now += 1
    assert health.would_allow(ROUTE) and await health.allow(ROUTE)
    assert not await health.allow(ROUTE)


# -- shared between processes ------------------------------------------------------------


async def settle(check: Callable[[], bool], what: str) -> None:
    await wait_until(check, timeout=5, what=what, interval=0.01)


async def test_failures_on_two_processes_open_the_route_for_both(cluster: Cluster) -> None:
    a, b = await cluster.node(), await cluster.node()
    await fail(a, FAILURES - 1)
    await settle(lambda: b.describe(ROUTE).consecutive_failures == FAILURES - 1, "b hears a")
    assert b.state(ROUTE) == "closed"
    await fail(b, 1)
    await settle(lambda: a.state(ROUTE) == "open", "a hears that b opened the route")
    assert not a.would_allow(ROUTE) and not await a.allow(ROUTE)
    assert a.retry_after(ROUTE) == COOLDOWN
    row = await cluster.row()
    assert row is not None and row.failures == FAILURES and row.opened_at == cluster.clock.now
    # A process started now reads the state from the database.
    c = await cluster.node()
    assert c.state(ROUTE) == "open" and c.describe(ROUTE).consecutive_failures == FAILURES
    # A success anywhere closes it everywhere.
    await c.success(ROUTE)
    await settle(lambda: a.state(ROUTE) == b.state(ROUTE) == "closed", "all closed")
    assert a.describe(ROUTE).consecutive_failures == 0


async def test_exactly_one_process_takes_the_half_open_trial(cluster: Cluster) -> None:
    nodes = [await cluster.node() for _ in range(4)]
    for round_ in range(5):
        await fail(nodes[round_ % 4], FAILURES)
        await settle(lambda: all(n.state(ROUTE) == "open" for n in nodes), "open everywhere")
        cluster.clock.now += COOLDOWN
        # Every process still believes the trial is free, and all ask at once.
        assert all(n.would_allow(ROUTE) for n in nodes)
        taken = await asyncio.gather(*(n.allow(ROUTE) for n in nodes for _ in range(3)))
        assert sum(taken) == 1, f"round {round_}: {sum(taken)} trials taken"
        await settle(lambda: not any(n.would_allow(ROUTE) for n in nodes), "trial seen")
        await nodes[(round_ + 1) % 4].failure(ROUTE)  # the trial failed: open again


async def test_a_success_on_a_healthy_route_writes_nothing(cluster: Cluster) -> None:
    a = await cluster.node()
    for _ in range(10):
        await a.success(ROUTE)
    assert await cluster.row() is None
    await fail(a, 1)
    await a.success(ROUTE)
    await a.success(ROUTE)
    row = await cluster.row()
    assert row is not None and (row.failures, row.version) == (0, 2)


async def test_a_process_that_missed_messages_reads_the_breakers_again(
    cluster: Cluster,
) -> None:
    a, b = await cluster.node(), await cluster.node()
    bus_b = cluster.buses[1]
    await bus_b.stop()  # b stops hearing the others
    await fail(a, FAILURES)
    await asyncio.sleep(0.2)
    assert b.state(ROUTE) == "closed"  # stale: nothing told it
    await bus_b.start()  # the (re)connected listener resyncs
    await settle(lambda: b.state(ROUTE) == "open", "b re-read the breakers")
    # An older state heard late does not replace a newer one.
    b._on_message(
        '{"route": "vendor-route", "failures": 0, "opened_at": null, "trial_at": null, '
        '"version": 1}'
    )
    assert b.state(ROUTE) == "open"
