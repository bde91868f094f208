"""Queries for uploads."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from framegate.models import Upload


class UploadRepository:
    def stage(self, session: AsyncSession, upload: Upload) -> Upload:
        """Add the row for the next flush (at the latest the commit): a submission that
        stores its form's image takes the write lock only when it writes its task."""
        session.add(upload)
        return upload

    async def get(self, session: AsyncSession, account_id: str, upload_id: str) -> Upload | None:
        """The account's upload (deleted ones too); another account's id reads as absent."""
        statement = select(Upload).where(Upload.id == upload_id, Upload.account_id == account_id)
        return (await session.execute(statement)).scalar_one_or_none()

    async def get_by_number(
        self, session: AsyncSession, account_id: str, number: int
    ) -> Upload | None:
        statement = select(Upload).where(Upload.number == number, Upload.account_id == account_id)
        return (await session.execute(statement)).scalar_one_or_none()

    async def expired(self, session: AsyncSession, now: datetime, limit: int) -> list[Upload]:
        statement = (
            select(Upload)
            .where(Upload.deleted_at.is_(None), Upload.expires_at < now)
            .order_by(Upload.expires_at)
            .limit(limit)
        )
        return list((await session.execute(statement)).scalars())

    async def mark_deleted(self, session: AsyncSession, upload_id: str, now: datetime) -> None:
        await session.execute(update(Upload).where(Upload.id == upload_id).values(deleted_at=now))


upload_repository = UploadRepository()
