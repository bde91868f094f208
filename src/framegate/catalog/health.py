"""Route health: a circuit breaker per route, shown by GET /v1/models.

After ``failures_to_open`` consecutive upstream failures a route is *open*: new tasks go to
its fallbacks (or wait), and submissions with no available fallback are answered 503 with
``Retry-After``. After ``cooldown_seconds`` it is *half open*: one task is let through as a
trial; its success closes the route, its failure opens it for another cooldown.

The state lives in each process (the embedded deployment runs API and workers in one):
a process that restarts starts with every route closed.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

HealthState = Literal["closed", "open", "half_open"]


class RouteHealthObject(BaseModel):
    state: HealthState
    consecutive_failures: int
    retry_after: int | None = Field(
        default=None, description="Seconds until an open route takes a trial task again."
    )


@dataclass
class _Breaker:
    failures: int = 0
    opened_at: float | None = None
    trial_in_flight: bool = False


class RouteHealth:
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

    def _state(self, breaker: _Breaker) -> HealthState:
        if breaker.opened_at is None:
            return "closed"
        if self._clock() - breaker.opened_at >= self.cooldown_seconds:
            return "half_open"
        return "open"

    def state(self, route_id: str) -> HealthState:
        with self._lock:
            return self._state(self._breakers.get(route_id, _Breaker()))

    def allow(self, route_id: str) -> bool:
        """Whether a task may be sent to the route now (taking the half-open trial)."""
        with self._lock:
            breaker = self._breakers.setdefault(route_id, _Breaker())
            state = self._state(breaker)
            if state == "closed":
                return True
            if state == "half_open" and not breaker.trial_in_flight:
                breaker.trial_in_flight = True
                return True
            return False

    def would_allow(self, route_id: str) -> bool:
        """``allow`` without taking the trial (for submissions)."""
        with self._lock:
            breaker = self._breakers.get(route_id, _Breaker())
            state = self._state(breaker)
            return state == "closed" or (state == "half_open" and not breaker.trial_in_flight)

    def success(self, route_id: str) -> None:
        with self._lock:
            self._breakers[route_id] = _Breaker()

    def failure(self, route_id: str) -> None:
        with self._lock:
            breaker = self._breakers.setdefault(route_id, _Breaker())
            breaker.failures += 1
            if breaker.trial_in_flight or breaker.failures >= self.failures_to_open:
                breaker.opened_at = self._clock()
                breaker.trial_in_flight = False

    def retry_after(self, route_id: str) -> int | None:
        with self._lock:
            breaker = self._breakers.get(route_id)
            if breaker is None or breaker.opened_at is None:
                return None
            left = self.cooldown_seconds - (self._clock() - breaker.opened_at)
            return max(0, math.ceil(left))

    def describe(self, route_id: str) -> RouteHealthObject:
        with self._lock:
            breaker = self._breakers.get(route_id, _Breaker())
            state = self._state(breaker)
            failures = breaker.failures
        return RouteHealthObject(
            state=state,
            consecutive_failures=failures,
            retry_after=self.retry_after(route_id) if state == "open" else None,
        )
