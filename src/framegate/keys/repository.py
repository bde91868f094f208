"""Queries for API keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from framegate.models import Account, APIKey


class APIKeyRepository:
    async def by_hash(
        self, session: AsyncSession, secret_hash: str
    ) -> tuple[APIKey, Account] | None:
        statement = (
            select(APIKey, Account)
            .join(Account, Account.id == APIKey.account_id)
            .where(APIKey.secret_hash == secret_hash)
        )
        row = (await session.execute(statement)).first()
        return None if row is None else (row[0], row[1])

    async def by_any_hash(
        self, session: AsyncSession, secret_hashes: list[str]
    ) -> tuple[APIKey, Account] | None:
        """The key stored under any of ``secret_hashes`` (hashes under earlier secrets)."""
        statement = (
            select(APIKey, Account)
            .join(Account, Account.id == APIKey.account_id)
            .where(APIKey.secret_hash.in_(secret_hashes))
            .limit(1)
        )
        row = (await session.execute(statement)).first()
        return None if row is None else (row[0], row[1])

    async def rehash(self, session: AsyncSession, key_id: str, secret_hash: str) -> None:
        await session.execute(
            update(APIKey).where(APIKey.id == key_id).values(secret_hash=secret_hash)
        )

    async def touch(self, session: AsyncSession, key_id: str, when: datetime) -> None:
        await session.execute(update(APIKey).where(APIKey.id == key_id).values(last_used_at=when))

    async def get(self, session: AsyncSession, account_id: str, key_id: str) -> APIKey | None:
        statement = select(APIKey).where(APIKey.id == key_id, APIKey.account_id == account_id)
        return (await session.execute(statement)).scalar_one_or_none()

    async def list_for_account(self, session: AsyncSession, account_id: str) -> list[APIKey]:
        statement = (
            select(APIKey).where(APIKey.account_id == account_id).order_by(APIKey.created_at)
        )
        return list((await session.execute(statement)).scalars())


api_key_repository = APIKeyRepository()
