"""Rate limits per key, concurrent tasks per account, spend caps per key, plans."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

from limits import RateLimitItemPerMinute
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from framegate.exceptions import FramegateError, PaymentRequired
from framegate.keys.service import AuthContext
from framegate.kit.cluster import ClusterBus
from framegate.kit.time import utcnow
from framegate.limits.repository import limits_repository
from framegate.limits.window import retry_after_seconds, sliding_window_limiter
from framegate.models import APIKey, Plan, TaskType


class RateLimited(FramegateError):
    status_code = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class KeyBudgetExceeded(PaymentRequired):
    code = "key_budget_exceeded"


@dataclass(frozen=True, slots=True)
class PlanLimits:
    name: str
    max_concurrent_videos: int
    max_concurrent_images: int
    requests_per_minute: int


class LimitsService:
    def __init__(
        self,
        *,
        storage_url: str,
        defaults: PlanLimits,
        plan_cache_seconds: float,
        read_sessionmaker: async_sessionmaker[AsyncSession],
        bus: ClusterBus | None = None,
    ) -> None:
        self._read_sessionmaker = read_sessionmaker
        self._bus = bus or ClusterBus(None)
        self._bus.subscribe("plans", lambda _: self.forget_plans())
        self._bus.on_resync(self.forget_plans)
        self._limiter = sliding_window_limiter(storage_url)
        self._defaults = defaults
        self._plan_cache: dict[str, tuple[float, PlanLimits]] = {}
        self._plan_cache_seconds = plan_cache_seconds

    async def check_rate(self, auth: AuthContext, limits: PlanLimits) -> None:
        """Count one request against the key's per-minute budget; 429 when it is spent."""
        item = _per_minute(limits.requests_per_minute)
        if await self._limiter.hit(item, "key", auth.key.id):
            return
        retry_after = await retry_after_seconds(self._limiter, item, "key", auth.key.id)
        raise RateLimited(
            f"This API key is over its limit of {limits.requests_per_minute} requests per "
            f"minute. Retry after {retry_after} s.",
            headers={
                "Retry-After": str(retry_after),
                "RateLimit-Limit": str(limits.requests_per_minute),
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(retry_after),
            },
        )

    async def plan_for(self, plan_name: str) -> PlanLimits:
        """The plan's limits (cached briefly: every request needs them)."""
        cached = self._plan_cache.get(plan_name)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self._read_sessionmaker() as session:
            row = await limits_repository.plan(session, plan_name)
        limits = self._defaults if row is None else _from_row(row)
        self._plan_cache[plan_name] = (now + self._plan_cache_seconds, limits)
        return limits

    def forget_plans(self) -> None:
        self._plan_cache.clear()

    async def check_submission(
        self,
        session: AsyncSession,
        auth: AuthContext,
        task_type: str,
        price: int,
        limits: PlanLimits,
    ) -> None:
        """Inside the submitting transaction: concurrency and key spend, race-free.

        ``limits`` is looked up by the caller beforehand: reading the plan needs a
        connection of its own, and taking one while holding the account's row lock could
        wait forever on a pool drained by requests queued behind that lock."""
        await limits_repository.lock_account(session, auth.account.id)
        await self.precheck_submission(session, auth, task_type, price, limits)

    async def precheck_submission(
        self,
        session: AsyncSession,
        auth: AuthContext,
        task_type: str,
        price: int,
        limits: PlanLimits,
    ) -> None:
        """The checks of ``check_submission`` without the lock: in a read session, before
        a request does expensive work, they refuse early with the same 429 or 402 the
        transaction would give (which still decides, race-free)."""
        allowed = (
            limits.max_concurrent_videos
            if task_type == TaskType.video_generation
            else limits.max_concurrent_images
        )
        active = await limits_repository.active_tasks(session, auth.account.id, task_type)
        if active >= allowed:
            raise RateLimited(
                f"This account already has {active} unfinished {task_type} tasks, the most "
                f"its plan ({limits.name}) allows at once. Retry when one finishes.",
                code="concurrency_limit_exceeded",
                headers={"Retry-After": "5"},
            )
        await self._check_spend_cap(session, auth.key, price)

    @staticmethod
    async def _check_spend_cap(session: AsyncSession, key: APIKey, price: int) -> None:
        if key.spend_cap is None:
            return
        spent = await limits_repository.key_spend(session, key.id)
        if spent + price > key.spend_cap:
            raise KeyBudgetExceeded(
                f"This API key may spend {key.spend_cap} credits and has used or holds "
                f"{spent}; this request costs {price}. Raise the key's spend_cap or use "
                "another key.",
            )

    async def save_plan(self, session: AsyncSession, limits: PlanLimits) -> Plan:
        plan = await limits_repository.save_plan(
            session,
            Plan(
                name=limits.name,
                max_concurrent_videos=limits.max_concurrent_videos,
                max_concurrent_images=limits.max_concurrent_images,
                requests_per_minute=limits.requests_per_minute,
                updated_at=utcnow(),
            ),
        )
        await self._bus.publish(session, "plans")
        return plan

    async def list_plans(self, session: AsyncSession) -> list[PlanLimits]:
        return [_from_row(row) for row in await limits_repository.plans(session)]

    @property
    def defaults(self) -> PlanLimits:
        return self._defaults


@functools.lru_cache(maxsize=256)
def _per_minute(requests: int) -> RateLimitItemPerMinute:
    return RateLimitItemPerMinute(requests)


def _from_row(row: Plan) -> PlanLimits:
    return PlanLimits(
        name=row.name,
        max_concurrent_videos=row.max_concurrent_videos,
        max_concurrent_images=row.max_concurrent_images,
        requests_per_minute=row.requests_per_minute,
    )
