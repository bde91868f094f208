"""The captures behind usage figures: the ledger joined with the tasks it charged."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from framegate.models import LedgerEntry, LedgerKind, Task


class UsageRepository:
    async def captures(
        self, session: AsyncSession, account_id: str, start: datetime, end: datetime
    ) -> list[Any]:
        statement = (
            select(
                LedgerEntry.created_at,
                LedgerEntry.credits,
                Task.model,
                Task.api_key_id,
                Task.type,
                Task.params,
                Task.task_metadata,
            )
            .join(Task, Task.id == LedgerEntry.task_id)
            .where(
                LedgerEntry.account_id == account_id,
                LedgerEntry.kind == LedgerKind.capture,
                LedgerEntry.created_at >= start,
                LedgerEntry.created_at < end,
            )
        )
        return list((await session.execute(statement)).all())


usage_repository = UsageRepository()
