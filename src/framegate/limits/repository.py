"""Queries behind the limits: plans, active tasks, per-key spend."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from framegate.models import Account, Plan, Task, TaskStatus

ACTIVE = (TaskStatus.queued, TaskStatus.processing)


class LimitsRepository:
    async def plan(self, session: AsyncSession, name: str) -> Plan | None:
        return await session.get(Plan, name)

    async def plans(self, session: AsyncSession) -> list[Plan]:
        return list((await session.execute(select(Plan).order_by(Plan.name))).scalars())

    async def save_plan(self, session: AsyncSession, plan: Plan) -> Plan:
        merged = await session.merge(plan)
        await session.flush()
        return merged

    async def lock_account(self, session: AsyncSession, account_id: str) -> None:
        """Serialise concurrent submissions of one account (a no-op lock on SQLite, whose
        writers are already serialised by BEGIN IMMEDIATE)."""
        await session.execute(select(Account.id).where(Account.id == account_id).with_for_update())

    async def active_tasks(self, session: AsyncSession, account_id: str, task_type: str) -> int:
        statement = select(func.count()).where(
            Task.account_id == account_id, Task.type == task_type, Task.status.in_(ACTIVE)
        )
        return int((await session.execute(statement)).scalar_one())

    async def key_spend(self, session: AsyncSession, api_key_id: str) -> int:
        """Credits a key has spent plus those its running tasks hold."""
        held = func.sum(Task.credits_reserved).filter(Task.status.in_(ACTIVE))
        used = func.sum(Task.credits_used)
        statement = select(func.coalesce(held, 0), func.coalesce(used, 0)).where(
            Task.api_key_id == api_key_id
        )
        held_total, used_total = (await session.execute(statement)).one()
        return int(held_total) + int(used_total)


limits_repository = LimitsRepository()
