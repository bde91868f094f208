"""Route health: a circuit breaker per route, shown by GET /v1/models.

After ``failures_to_open`` consecutive upstream failures a route is *open*: new tasks go to
its fallbacks (or wait), and submissions with no available fallback are answered 503 with
``Retry-After``. After ``cooldown_seconds`` it is *half open*: one task is let through as a
trial; its success closes the route, its failure opens it for another cooldown. A trial
that never reports (its process died) is given up after another cooldown, and the next
task becomes the trial.

``RouteHealth`` keeps the breakers in this process (the embedded deployment runs API and
workers in one; a restart closes every route). ``SharedRouteHealth`` keeps them in the
database for every process of a distributed installation: each change is one atomic
statement on the route's row (so two workers never both take the half-open trial) and is
announced on the cluster bus, and each process answers reads from its copy of the rows.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import case, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from framegate.db import after_commit, transaction
from framegate.kit.cluster import ClusterBus
from framegate.kit.time import utcnow
from framegate.models import RouteBreaker

log = logging.getLogger(__name__)

HealthState = Literal["closed", "open", "half_open"]
BUS_KIND = "breaker"


class RouteHealthObject(BaseModel):
    state: HealthState
    consecutive_failures: int
    retry_after: int | None = Field(
        default=None, description="Seconds until an open route takes a trial task again."
    )


@dataclass(frozen=True)
class _Breaker:
    failures: int = 0
    opened_at: float | None = None
    trial_at: float | None = None
    version: int = 0


_CLOSED = _Breaker()


class RouteHealth:
    """The breakers of this process. Reads are synchronous (they answer submissions and
    GET /v1/models); the changes a worker makes are coroutines, so that the shared
    implementation can write them to the database."""

    def __init__(
        self,
        *,
        failures_to_open: int = 5,
        cooldown_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures_to_open = failures_to_open
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._breakers: dict[str, _Breaker] = {}
        self._lock = threading.Lock()

    # -- reads ---------------------------------------------------------------------------

    def _get(self, route_id: str) -> _Breaker:
        with self._lock:
            return self._breakers.get(route_id, _CLOSED)

    def _state(self, breaker: _Breaker, now: float) -> HealthState:
        if breaker.opened_at is None:
            return "closed"
        if now - breaker.opened_at >= self.cooldown_seconds:
            return "half_open"
        return "open"

    def _trial_free(self, breaker: _Breaker, now: float) -> bool:
        return breaker.trial_at is None or now - breaker.trial_at >= self.cooldown_seconds

    def state(self, route_id: str) -> HealthState:
        return self._state(self._get(route_id), self._clock())

    def would_allow(self, route_id: str) -> bool:
        """Whether ``allow`` would let a task through now, without taking the trial (for
        submissions)."""
        breaker, now = self._get(route_id), self._clock()
        state = self._state(breaker, now)
        return state == "closed" or (state == "half_open" and self._trial_free(breaker, now))

    def retry_after(self, route_id: str) -> int | None:
        breaker = self._get(route_id)
        if breaker.opened_at is None:
            return None
        left = self.cooldown_seconds - (self._clock() - breaker.opened_at)
        return max(0, math.ceil(left))

    def describe(self, route_id: str) -> RouteHealthObject:
        breaker = self._get(route_id)
        state = self._state(breaker, self._clock())
        return RouteHealthObject(
            state=state,
            consecutive_failures=breaker.failures,
            retry_after=self.retry_after(route_id) if state == "open" else None,
        )

    # -- changes -------------------------------------------------------------------------

    def _opens(self, breaker: _Breaker) -> bool:
        """Whether one more failure opens (or re-opens) the breaker."""
        return breaker.trial_at is not None or breaker.failures + 1 >= self.failures_to_open

    async def allow(self, route_id: str) -> bool:
        """Whether a task may be sent to the route now (taking the half-open trial)."""
        with self._lock:
            breaker, now = self._breakers.get(route_id, _CLOSED), self._clock()
            state = self._state(breaker, now)
            if state == "closed":
                return True
            if state == "open" or not self._trial_free(breaker, now):
                return False
            self._breakers[route_id] = _Breaker(
                breaker.failures, breaker.opened_at, now, breaker.version + 1
            )
            return True

    async def success(self, route_id: str) -> None:
        with self._lock:
            version = self._breakers.get(route_id, _CLOSED).version
            self._breakers[route_id] = _Breaker(version=version + 1)

    async def failure(self, route_id: str) -> None:
        with self._lock:
            breaker, now = self._breakers.get(route_id, _CLOSED), self._clock()
            opened_at = now if self._opens(breaker) else breaker.opened_at
            self._breakers[route_id] = _Breaker(
                breaker.failures + 1, opened_at, None, breaker.version + 1
            )


_COLUMNS = (
    RouteBreaker.route_id,
    RouteBreaker.failures,
    RouteBreaker.opened_at,
    RouteBreaker.trial_at,
    RouteBreaker.version,
)


class SharedRouteHealth(RouteHealth):
    """The breakers of every process of an installation, in the ``route_breakers`` table
    (PostgreSQL). Times are wall-clock seconds, compared across machines: keep their clocks
    synchronised (NTP); a skew of a second moves a cooldown by a second."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        bus: ClusterBus,
        *,
        failures_to_open: int = 5,
        cooldown_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            failures_to_open=failures_to_open, cooldown_seconds=cooldown_seconds, clock=clock
        )
        self._sessionmaker = sessionmaker
        self._bus = bus
        self._reloading: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Read every breaker, and follow the changes other processes announce (call before
        the bus starts, so that its resyncs reload them)."""
        self._bus.subscribe(BUS_KIND, self._on_message)
        self._bus.on_resync(self._schedule_reload)
        await self.reload()

    async def reload(self) -> None:
        async with self._sessionmaker() as session:
            rows = (await session.execute(select(*_COLUMNS))).all()
        for row in rows:
            self._apply(row.route_id, _Breaker(*row[1:]))

    def _schedule_reload(self) -> None:
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.create_task(self._reload_logged(), name="breaker-reload")

    async def _reload_logged(self) -> None:
        try:
            await self.reload()
        except Exception:
            log.exception("could not re-read the route breakers")

    def _apply(self, route_id: str, breaker: _Breaker) -> None:
        """Keep ``breaker`` unless this process already knows a newer state of the route."""
        with self._lock:
            if breaker.version > self._breakers.get(route_id, _CLOSED).version:
                self._breakers[route_id] = breaker

    def _on_message(self, payload: str) -> None:
        data = json.loads(payload)
        self._apply(
            data["route"],
            _Breaker(data["failures"], data["opened_at"], data["trial_at"], data["version"]),
        )

    async def _write(self, statement: Any) -> bool:
        """Run one change (``RETURNING`` the row) and announce the new state; False when it
        changed nothing (a condition did not hold)."""
        async with transaction(self._sessionmaker) as session:
            row = (await session.execute(statement.returning(*_COLUMNS))).first()
            if row is None:
                return False
            route_id, breaker = row.route_id, _Breaker(*row[1:])
            message = {
                "route": route_id,
                "failures": breaker.failures,
                "opened_at": breaker.opened_at,
                "trial_at": breaker.trial_at,
                "version": breaker.version,
            }
            await self._bus.publish(session, BUS_KIND, json.dumps(message))
            after_commit(session, lambda: self._apply(route_id, breaker))
        return True

    async def allow(self, route_id: str) -> bool:
        breaker, now = self._get(route_id), self._clock()
        state = self._state(breaker, now)
        if state == "closed":
            return True
        if state == "open" or not self._trial_free(breaker, now):
            return False
        table = RouteBreaker.__table__.c
        # One process wins the trial: the row still has to be half open with no live trial.
        taken = await self._write(
            update(RouteBreaker)
            .where(
                table.route_id == route_id,
                table.opened_at.is_not(None),
                table.opened_at <= now - self.cooldown_seconds,
                or_(table.trial_at.is_(None), table.trial_at <= now - self.cooldown_seconds),
            )
            .values(trial_at=now, version=table.version + 1, updated_at=utcnow())
        )
        if not taken:
            await self.reload()
        return taken

    async def success(self, route_id: str) -> None:
        breaker = self._get(route_id)
        if breaker.failures == 0 and breaker.opened_at is None and breaker.trial_at is None:
            return  # nothing to reset: no write per successful task
        values = {"failures": 0, "opened_at": None, "trial_at": None}
        await self._upsert(route_id, values, values)

    async def failure(self, route_id: str) -> None:
        table = RouteBreaker.__table__.c
        now = self._clock()
        first_opens = self.failures_to_open <= 1
        opens = or_(table.trial_at.is_not(None), table.failures + 1 >= self.failures_to_open)
        await self._upsert(
            route_id,
            {"failures": 1, "opened_at": now if first_opens else None, "trial_at": None},
            {
                "failures": table.failures + 1,
                "opened_at": case((opens, now), else_=table.opened_at),
                "trial_at": None,
            },
        )

    async def _upsert(
        self, route_id: str, inserted: dict[str, Any], updated: dict[str, Any]
    ) -> None:
        table = RouteBreaker.__table__.c
        now = utcnow()
        statement = insert(RouteBreaker).values(
            route_id=route_id, version=1, created_at=now, updated_at=now, **inserted
        )
        statement = statement.on_conflict_do_update(
            index_elements=[table.route_id],
            set_={**updated, "version": table.version + 1, "updated_at": now},
        )
        await self._write(statement)
