"""Queries for accounts."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from framegate.models import Account


class AccountRepository:
    async def add(self, session: AsyncSession, account: Account) -> Account:
        session.add(account)
        await session.flush()
        return account

    async def get(self, session: AsyncSession, account_id: str) -> Account | None:
        return await session.get(Account, account_id)

    async def list_all(self, session: AsyncSession) -> list[Account]:
        return list((await session.execute(select(Account).order_by(Account.id))).scalars())


account_repository = AccountRepository()
