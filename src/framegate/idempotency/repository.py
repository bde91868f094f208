"""Queries for idempotency keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from framegate.models import IdempotencyKey


class IdempotencyRepository:
    async def claim(self, session: AsyncSession, row: IdempotencyKey) -> bool:
        """Insert the key unless it exists (one statement, so concurrent claims of one key
        cannot both win); True when this call inserted it."""
        values = {
            "id": row.id,
            "account_id": row.account_id,
            "key": row.key,
            "fingerprint": row.fingerprint,
            "status": row.status,
            "expires_at": row.expires_at,
            "created_at": row.created_at,
        }
        insert = (
            postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        )
        statement = (
            insert(IdempotencyKey)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["account_id", "key"])
            .returning(IdempotencyKey.id)
        )
        return (await session.execute(statement)).scalar_one_or_none() is not None

    async def get(self, session: AsyncSession, account_id: str, key: str) -> IdempotencyKey | None:
        statement = select(IdempotencyKey).where(
            IdempotencyKey.account_id == account_id, IdempotencyKey.key == key
        )
        return (await session.execute(statement)).scalar_one_or_none()

    async def delete(self, session: AsyncSession, row_id: str) -> None:
        await session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == row_id))

    async def complete(
        self,
        session: AsyncSession,
        row_id: str,
        *,
        status: int,
        headers: dict[str, str],
        body: bytes,
    ) -> None:
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == row_id)
            .values(
                status="completed",
                response_status=status,
                response_headers=headers,
                response_body=body,
            )
        )

    async def delete_expired(self, session: AsyncSession, now: datetime) -> int:
        result = await session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.expires_at < now)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


idempotency_repository = IdempotencyRepository()
