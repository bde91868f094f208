"""The cluster bus between processes, two buses standing in for two nodes on one real
PostgreSQL database (a fresh one per test, so the listener connections each test counts
in pg_stat_activity are its own)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import operator
import secrets
import statistics
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from framegate.db import create_engine, create_sessionmaker, transaction
from framegate.kit.cluster import (
    APPLICATION_NAME,
    MAX_PAYLOAD_BYTES,
    ClusterBus,
    asyncpg_dsn,
)
from tests.conftest import POSTGRES_ADMIN_DSN, pg_admin
from tests.waiting import wait_until

# Trust authentication ignores it; it is there to prove no log line shows it.
PASSWORD = "never-logged-7f3a"


@dataclass
class Inbox:
    """A subscriber that records what it receives and when."""

    received: list[str] = field(default_factory=list)
    arrived: dict[str, float] = field(default_factory=dict)

    def __call__(self, payload: str) -> None:
        self.received.append(payload)
        self.arrived[payload] = time.perf_counter()


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    name = f"framegate_bus_{secrets.token_hex(6)}"
    await pg_admin(f'CREATE DATABASE "{name}"')
    url = make_url(
        POSTGRES_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    )
    try:
        yield url.set(database=name, password=PASSWORD).render_as_string(hide_password=False)
    finally:
        await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def sessionmaker(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def started(*buses: ClusterBus) -> AsyncIterator[None]:
    try:
        for bus in buses:
            await bus.start()
        yield
    finally:
        for bus in buses:
            await bus.stop()


async def listener_pids(database_url: str) -> list[int]:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity"
            " WHERE application_name = $1 AND datname = current_database()",
            APPLICATION_NAME,
        )
    finally:
        await connection.close()
    return sorted(row["pid"] for row in rows)


async def publish(
    sessionmaker: async_sessionmaker[AsyncSession], bus: ClusterBus, kind: str, payload: str
) -> None:
    async with transaction(sessionmaker) as session:
        await bus.publish(session, kind, payload)


def test_dsn_keeps_credentials_and_what_asyncpg_reads() -> None:
    dsn = asyncpg_dsn(
        "postgresql+asyncpg://us%40er:p%40ss%20w%2Brd%2F%3A%25@[::1]:5433/db"
        "?ssl=require&sslrootcert=/ca.pem&prepared_statement_cache_size=0"
    )
    parts = urllib.parse.urlsplit(dsn)
    assert parts.scheme == "postgresql"
    assert urllib.parse.unquote(parts.username or "") == "us@er"
    assert urllib.parse.unquote(parts.password or "") == "p@ss w+rd/:%"
    assert (parts.hostname, parts.port, parts.path) == ("::1", 5433, "/db")
    assert urllib.parse.parse_qs(parts.query) == {
        "sslmode": ["require"],
        "sslrootcert": ["/ca.pem"],
    }
    several = asyncpg_dsn("postgresql+asyncpg://u@/db?host=h1:5432&host=h2:5433")
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(several).query) == {
        "host": ["h1:5432,h2:5433"]
    }
    with pytest.raises(ValueError, match="not a PostgreSQL URL"):
        asyncpg_dsn("sqlite+aiosqlite:///framegate.db")


async def test_committed_message_reaches_every_node_rolled_back_reaches_none(
    database_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    node_a, node_b = ClusterBus(database_url), ClusterBus(database_url)
    inbox_a, inbox_b, keys_b = Inbox(), Inbox(), Inbox()
    node_a.subscribe("task", inbox_a)
    node_b.subscribe("task", inbox_b)
    node_b.subscribe("keys", keys_b)
    async with started(node_a, node_b):
        async with sessionmaker() as session:
            await node_a.publish(session, "task", "task_rolled_back")
            await session.rollback()
        await publish(sessionmaker, node_a, "task", "task_1")
        await publish(sessionmaker, node_a, "keys", "")

        # Messages arrive in commit order, so once the last one is in, an earlier one
        # that was ever going to arrive has.
        await wait_until(lambda: keys_b.received == [""], 5, "the keys message on node B")
        await wait_until(lambda: inbox_a.received, 5, "the task message on node A")
    assert inbox_a.received == ["task_1"]
    assert inbox_b.received == ["task_1"]


async def test_message_waits_for_commit(
    database_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    node_a, node_b = ClusterBus(database_url), ClusterBus(database_url)
    inbox_b = Inbox()
    node_b.subscribe("task", inbox_b)
    async with started(node_b), sessionmaker() as session:
        await node_a.publish(session, "task", "task_1")
        # Committed meanwhile by another session: once it is in, task_1 would be too if
        # publishing had sent it.
        await publish(sessionmaker, node_a, "task", "probe")
        await wait_until(lambda: "probe" in inbox_b.received, 5, "the probe")
        assert inbox_b.received == ["probe"]
        await session.commit()
        await wait_until(lambda: inbox_b.received == ["probe", "task_1"], 5, "the message")


async def test_commit_to_delivery_latency(
    database_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A correctness bound, not a benchmark: a message that takes 100 ms to cross one
    loopback database means the listener is not being woken by the notification."""
    node_a, node_b = ClusterBus(database_url), ClusterBus(database_url)
    inbox_b = Inbox()
    node_b.subscribe("task", inbox_b)
    latencies: list[float] = []
    async with started(node_a, node_b):
        for number in range(20):
            payload = f"task_{number}"
            async with sessionmaker() as session:
                await node_a.publish(session, "task", payload)
                committing = time.perf_counter()
                await session.commit()
            arrived = functools.partial(operator.contains, inbox_b.arrived, payload)
            await wait_until(arrived, 5, f"{payload} on B", interval=0.001)
            latencies.append(inbox_b.arrived[payload] - committing)
    print(
        f"commit to delivery over {len(latencies)} messages: "
        f"median {statistics.median(latencies) * 1000:.2f} ms, "
        f"max {max(latencies) * 1000:.2f} ms"
    )
    assert max(latencies) < 0.1, latencies


async def test_listener_reconnects_and_resyncs_after_its_backend_is_killed(
    database_url: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="framegate.kit.cluster")
    node_a, node_b = ClusterBus(database_url), ClusterBus(database_url)
    inbox_b = Inbox()
    resyncs: list[float] = []
    node_b.subscribe("task", inbox_b)
    node_b.on_resync(lambda: resyncs.append(time.monotonic()))
    # Node A only publishes: its listener is not started, so B's is the only one here.
    async with started(node_b):
        assert len(resyncs) == 1, "starting resyncs too: the process may have missed messages"
        [killed] = await listener_pids(database_url)
        await pg_admin(f"SELECT pg_terminate_backend({killed})")

        await wait_until(lambda: len(resyncs) == 2, 10, "B to reconnect and resync")
        [replacement] = await listener_pids(database_url)
        assert replacement != killed
        await publish(sessionmaker, node_a, "task", "after_reconnect")
        await wait_until(
            lambda: inbox_b.received == ["after_reconnect"], 5, "a message after reconnecting"
        )
    assert "lost its connection" in caplog.text
    assert PASSWORD not in caplog.text


class FreezableProxy:
    """A TCP relay to the database whose open connections can be frozen: bytes stop
    flowing both ways while every socket stays open, as when a network path dies
    silently. Connections opened after a freeze flow normally."""

    def __init__(self, host: str, port: int) -> None:
        self._upstream = (host, port)
        self._pumps: list[asyncio.Task[None]] = []
        self._writers: list[asyncio.StreamWriter] = []
        self.connections = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        self.connections += 1
        self._writers += [writer, up_writer]
        self._pumps += [
            asyncio.create_task(_pump(reader, up_writer)),
            asyncio.create_task(_pump(up_reader, writer)),
        ]

    def freeze(self) -> None:
        for pump in self._pumps:
            pump.cancel()

    async def close(self) -> None:
        self.freeze()
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    # Passed on, so the far side sees its peer hang up (not on a freeze: that cancels).
    writer.close()


async def test_health_check_replaces_a_silently_dead_connection(
    database_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    url = make_url(database_url)
    proxy = FreezableProxy(url.host or "127.0.0.1", url.port or 5432)
    proxied = url.set(host="127.0.0.1", port=await proxy.start())
    node_a = ClusterBus(database_url)
    node_b = ClusterBus(proxied.render_as_string(hide_password=False), health_seconds=0.2)
    inbox_b = Inbox()
    resyncs: list[float] = []
    node_b.subscribe("task", inbox_b)
    node_b.on_resync(lambda: resyncs.append(time.monotonic()))
    try:
        async with started(node_b):
            connected = proxy.connections
            proxy.freeze()
            await wait_until(lambda: len(resyncs) == 2, 10, "B to notice and reconnect")
            assert proxy.connections > connected
            await publish(sessionmaker, node_a, "task", "after_silent_drop")
            await wait_until(
                lambda: inbox_b.received == ["after_silent_drop"], 5, "a message after it"
            )
    finally:
        await proxy.close()


async def test_stop_is_idempotent_and_closes_the_listener(database_url: str) -> None:
    bus = ClusterBus(database_url)
    await bus.start()
    assert len(await listener_pids(database_url)) == 1
    await bus.stop()
    await bus.stop()

    async def no_listener() -> bool:
        return await listener_pids(database_url) == []

    check: Callable[[], Awaitable[bool] | bool] = no_listener
    await wait_until(check, 10, "the listener connection to end")


async def test_start_raises_when_the_database_is_unreachable(database_url: str) -> None:
    unreachable = make_url(database_url).set(host="127.0.0.1", port=1)
    bus = ClusterBus(unreachable.render_as_string(hide_password=False))
    with pytest.raises(OSError):
        await bus.start()
    await bus.stop()


async def test_largest_payload_crosses_and_a_larger_one_is_refused(
    database_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    bus = ClusterBus(database_url)
    inbox = Inbox()
    bus.subscribe("task", inbox)
    largest = "é" * (MAX_PAYLOAD_BYTES // 2)
    async with started(bus):
        async with sessionmaker() as session:
            with pytest.raises(ValueError, match="over 7000 bytes"):
                await bus.publish(session, "task", largest + "x")
        await publish(sessionmaker, bus, "task", largest)
        await wait_until(lambda: inbox.received == [largest], 5, "the largest payload")


async def test_subscriber_failure_is_logged_and_others_still_run(
    database_url: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = ClusterBus(database_url)
    inbox = Inbox()

    def broken(_payload: str) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe("plans", broken)
    bus.subscribe("plans", inbox)
    async with started(bus):
        await publish(sessionmaker, bus, "plans", "")
        await wait_until(lambda: inbox.received == [""], 5, "the second subscriber")
    assert "subscriber bug" in caplog.text


async def test_in_process_bus_delivers_on_commit_only(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/bus.db")
    sessionmaker = create_sessionmaker(engine)
    bus = ClusterBus(None)
    inbox, resyncs = Inbox(), []
    bus.subscribe("task", inbox)
    bus.on_resync(lambda: resyncs.append(1))
    try:
        async with started(bus):
            async with sessionmaker() as session:
                await session.execute(text("SELECT 1"))
                await bus.publish(session, "task", "rolled_back")
                await session.rollback()
            async with sessionmaker() as session:
                await session.execute(text("SELECT 1"))
                await bus.publish(session, "task", "task_1")
                assert inbox.received == []
                await session.commit()
                assert inbox.received == ["task_1"], "delivered by the commit itself"
            with pytest.raises(ValueError):
                await bus.publish(session, "task", "x" * (MAX_PAYLOAD_BYTES + 1))
    finally:
        await engine.dispose()
    assert inbox.received == ["task_1"]
    assert resyncs == []
