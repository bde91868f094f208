"""'Something changed' messages between the processes of one installation (API nodes and
workers on separate machines) over PostgreSQL LISTEN/NOTIFY.

A message is a ``kind`` (``"task"``, ``"keys"``, ``"plans"``) and a short payload. It is
published inside the transaction that made the change, so it reaches the other processes
only once that change is visible to them, and never when the transaction rolls back. The
messages are hints, not a log: one lost while a listener reconnects is covered by the
resync callbacks, which tell the process to forget what it cached and wake every waiter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from framegate.db import after_commit

log = logging.getLogger(__name__)

APPLICATION_NAME = "framegate-bus"
# PostgreSQL refuses a NOTIFY payload of 8000 bytes or more; the kind and separator fit
# in what this leaves.
MAX_PAYLOAD_BYTES = 7000
FIRST_RETRY_SECONDS = 0.1
MAX_RETRY_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 10.0
CLOSE_TIMEOUT_SECONDS = 2.0

_CHANNEL = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_KIND = re.compile(r"[a-z][a-z0-9_.-]{0,62}")
# What asyncpg reads from a DSN's query string; anything else it would send to the server
# as a setting. SQLAlchemy's asyncpg URLs name the TLS mode ``ssl`` (a connect() argument);
# the DSN spells it ``sslmode``.
_DSN_PARAMETERS = frozenset(
    {
        "host",
        "port",
        "dbname",
        "database",
        "user",
        "password",
        "passfile",
        "sslmode",
        "sslcert",
        "sslkey",
        "sslrootcert",
        "sslnegotiation",
        "sslcrl",
        "sslpassword",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "target_session_attrs",
        "krbsrvname",
        "gsslib",
        "service",
    }
)
_RENAMED_PARAMETERS = {"ssl": "sslmode"}


def asyncpg_dsn(database_url: str) -> str:
    """The libpq-style DSN asyncpg accepts for a SQLAlchemy PostgreSQL URL (password
    included: never log it). Query parameters only SQLAlchemy understands are dropped."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise ValueError(f"not a PostgreSQL URL: {url.render_as_string(hide_password=True)}")
    query: dict[str, str] = {}
    for key, value in url.query.items():
        name = _RENAMED_PARAMETERS.get(key, key)
        if name in _DSN_PARAMETERS:
            # Several hosts (SQLAlchemy's ?host=a:5432&host=b:5432) are one list to libpq.
            query[name] = value if isinstance(value, str) else ",".join(value)
    return url.set(drivername="postgresql", query=query).render_as_string(hide_password=False)


class ClusterBus:
    """Messages between the processes of one installation over PostgreSQL LISTEN/NOTIFY.

    With no database URL (embedded mode, SQLite) it delivers within this process only,
    synchronously once the publishing transaction commits, so callers need no branches.
    """

    def __init__(
        self,
        database_url: str | None,
        *,
        channel: str = "framegate_events",
        health_seconds: float = 5.0,
    ) -> None:
        if not _CHANNEL.fullmatch(channel):
            raise ValueError(f"invalid channel name: {channel!r}")
        if health_seconds <= 0:
            raise ValueError("health_seconds must be positive")
        self._dsn = asyncpg_dsn(database_url) if database_url else None
        self._where = make_url(database_url).render_as_string() if database_url else "in-process"
        self._channel = channel
        self._health_seconds = health_seconds
        self._subscribers: dict[str, list[Callable[[str], None]]] = defaultdict(list)
        self._resync_callbacks: list[Callable[[], None]] = []
        self._connection: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def distributed(self) -> bool:
        """True when messages travel through PostgreSQL to other processes."""
        return self._dsn is not None

    def subscribe(self, kind: str, callback: Callable[[str], None]) -> None:
        """Call ``callback(payload)`` in the event loop for every message of ``kind``; what
        it raises is logged."""
        _check_kind(kind)
        self._subscribers[kind].append(callback)

    def on_resync(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once the listener is (re)connected: messages sent while it
        was away are lost, so the process must forget its caches and wake its waiters."""
        self._resync_callbacks.append(callback)

    async def publish(self, session: AsyncSession, kind: str, payload: str = "") -> None:
        """Send ``kind:payload`` to every listening process (this one included) when the
        session's transaction commits; a rollback drops it. Within one transaction,
        PostgreSQL delivers identical messages once."""
        _check_kind(kind)
        if len(payload.encode()) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"message payload over {MAX_PAYLOAD_BYTES} bytes")
        if "\x00" in payload:
            raise ValueError("message payload contains a NUL character")
        if self._dsn is None:
            after_commit(session, lambda: self._deliver(kind, payload))
            return
        await session.execute(
            text("SELECT pg_notify(:channel, :message)"),
            {"channel": self._channel, "message": f"{kind}:{payload}"},
        )

    async def start(self) -> None:
        """Listen, and keep listening in the background (reconnecting with backoff, probing
        a quiet connection every ``health_seconds``). Returns once listening; raises if the
        first connection fails."""
        if self._dsn is None or self._supervisor is not None:
            return
        self._connection = await self._connect()
        self._resync()
        self._supervisor = asyncio.create_task(self._supervise(), name="framegate-cluster-bus")

    async def stop(self) -> None:
        """Stop listening and close the connection (idempotent)."""
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        connection, self._connection = self._connection, None
        if connection is not None:
            await _close(connection)

    async def _connect(self) -> asyncpg.Connection:
        # A connection of its own: one from a pool would lose its LISTEN when handed back.
        connection = await asyncpg.connect(
            self._dsn,
            timeout=CONNECT_TIMEOUT_SECONDS,
            server_settings={"application_name": APPLICATION_NAME},
        )
        try:
            self._lost = lost = asyncio.Event()
            connection.add_termination_listener(lambda _connection: lost.set())
            await connection.add_listener(self._channel, self._on_notification)
        except BaseException:
            connection.terminate()
            raise
        return connection

    async def _supervise(self) -> None:
        while True:
            connection = self._connection
            if connection is not None:
                await self._watch(connection)
                log.warning("cluster bus lost its connection to %s; reconnecting", self._where)
                self._connection = None
                # A silently dropped peer would never answer a polite close.
                connection.terminate()
            self._connection = await self._reconnect()
            log.info("cluster bus listening again on %s", self._where)
            self._resync()

    async def _watch(self, connection: asyncpg.Connection) -> None:
        """Returns once ``connection`` is closed or stops answering."""
        while not connection.is_closed():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self._health_seconds)
                return
            try:
                await asyncio.wait_for(connection.fetchval("SELECT 1"), self._health_seconds)
            except Exception:
                return

    async def _reconnect(self) -> asyncpg.Connection:
        delay = FIRST_RETRY_SECONDS
        while True:
            await asyncio.sleep(delay)
            try:
                return await self._connect()
            # Whatever went wrong, the listener must come back once the database does.
            except Exception as e:
                delay = min(delay * 2, MAX_RETRY_SECONDS)
                log.warning(
                    "cluster bus cannot reach %s (%s); retrying in %.1fs",
                    self._where,
                    type(e).__name__,
                    delay,
                )

    def _on_notification(self, _connection: Any, _pid: int, _channel: str, message: str) -> None:
        kind, _, payload = message.partition(":")
        self._deliver(kind, payload)

    def _deliver(self, kind: str, payload: str) -> None:
        for callback in self._subscribers.get(kind, ()):
            try:
                callback(payload)
            except Exception:
                log.exception("cluster bus subscriber %r failed on %s message", callback, kind)

    def _resync(self) -> None:
        for callback in self._resync_callbacks:
            try:
                callback()
            except Exception:
                log.exception("cluster bus resync callback %r failed", callback)


def _check_kind(kind: str) -> None:
    if not _KIND.fullmatch(kind):
        raise ValueError(f"invalid message kind: {kind!r}")


async def _close(connection: asyncpg.Connection) -> None:
    try:
        await connection.close(timeout=CLOSE_TIMEOUT_SECONDS)
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        connection.terminate()
