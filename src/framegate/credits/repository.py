"""Queries for the credit ledger and the account balance it keeps."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from framegate.kit.ids import new_id
from framegate.models import Account, LedgerEntry, LedgerKind, Task, TaskStatus


class CreditRepository:
    async def debit_if_covered(self, session: AsyncSession, account_id: str, n: int) -> int | None:
        """Atomically take ``n`` credits if the balance covers them; the new balance or None.

        One conditional UPDATE: concurrent submissions serialise on the row, so the balance
        can never go below zero whatever the interleaving.
        """
        statement = (
            update(Account)
            .where(Account.id == account_id, Account.credit_balance >= n)
            .values(credit_balance=Account.credit_balance - n)
            .returning(Account.credit_balance)
        )
        return (await session.execute(statement)).scalar_one_or_none()

    async def credit(self, session: AsyncSession, account_id: str, n: int) -> int:
        statement = (
            update(Account)
            .where(Account.id == account_id)
            .values(credit_balance=Account.credit_balance + n)
            .returning(Account.credit_balance)
        )
        return (await session.execute(statement)).scalar_one()

    async def balance(self, session: AsyncSession, account_id: str) -> int | None:
        statement = select(Account.credit_balance).where(Account.id == account_id)
        return (await session.execute(statement)).scalar_one_or_none()

    async def held(self, session: AsyncSession, account_id: str) -> int:
        statement = select(func.coalesce(func.sum(Task.credits_reserved), 0)).where(
            Task.account_id == account_id,
            Task.status.in_([TaskStatus.queued, TaskStatus.processing]),
        )
        return int((await session.execute(statement)).scalar_one())

    async def add_entry(
        self,
        session: AsyncSession,
        *,
        account_id: str,
        kind: LedgerKind,
        amount: int,
        credits: int,
        balance_after: int,
        task_id: str | None = None,
        description: str = "",
    ) -> LedgerEntry:
        entry = LedgerEntry(
            id=new_id("led"),
            account_id=account_id,
            task_id=task_id,
            kind=kind,
            amount=amount,
            credits=credits,
            balance_after=balance_after,
            description=description[:300],
        )
        session.add(entry)
        await session.flush()
        return entry

    async def list_entries(
        self,
        session: AsyncSession,
        account_id: str,
        *,
        limit: int,
        after: str | None = None,
        task_id: str | None = None,
    ) -> list[LedgerEntry]:
        statement = select(LedgerEntry).where(LedgerEntry.account_id == account_id)
        if after:
            statement = statement.where(LedgerEntry.id < after)
        if task_id:
            statement = statement.where(LedgerEntry.task_id == task_id)
        statement = statement.order_by(LedgerEntry.id.desc()).limit(limit)
        return list((await session.execute(statement)).scalars())

    async def entries_for_task(self, session: AsyncSession, task_id: str) -> list[LedgerEntry]:
        statement = select(LedgerEntry).where(LedgerEntry.task_id == task_id)
        return list((await session.execute(statement)).scalars())


credit_repository = CreditRepository()
