"""Queries for webhook endpoints and deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from framegate.models import Account, WebhookDelivery, WebhookEndpoint


class WebhookRepository:
    async def enabled_endpoints(
        self, session: AsyncSession, account_id: str
    ) -> list[WebhookEndpoint]:
        statement = select(WebhookEndpoint).where(
            WebhookEndpoint.account_id == account_id, WebhookEndpoint.enabled.is_(True)
        )
        return list((await session.execute(statement)).scalars())

    async def add_delivery(self, session: AsyncSession, delivery: WebhookDelivery) -> None:
        session.add(delivery)
        await session.flush()

    # Endpoints

    async def add_endpoint(self, session: AsyncSession, endpoint: WebhookEndpoint) -> None:
        session.add(endpoint)
        await session.flush()

    async def get_endpoint(
        self, session: AsyncSession, account_id: str, endpoint_id: str
    ) -> WebhookEndpoint | None:
        statement = select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id, WebhookEndpoint.account_id == account_id
        )
        return (await session.execute(statement)).scalar_one_or_none()

    async def endpoint_by_id(
        self, session: AsyncSession, endpoint_id: str
    ) -> WebhookEndpoint | None:
        statement = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
        return (await session.execute(statement)).scalar_one_or_none()

    async def count_endpoints_locked(self, session: AsyncSession, account_id: str) -> int:
        """How many endpoints the account has, its row locked until the transaction ends
        (PostgreSQL; SQLite transactions that write hold the database's one write lock)."""
        await session.execute(select(Account.id).where(Account.id == account_id).with_for_update())
        statement = (
            select(func.count())
            .select_from(WebhookEndpoint)
            .where(WebhookEndpoint.account_id == account_id)
        )
        return int((await session.execute(statement)).scalar_one())

    async def list_endpoints(self, session: AsyncSession, account_id: str) -> list[WebhookEndpoint]:
        statement = (
            select(WebhookEndpoint)
            .where(WebhookEndpoint.account_id == account_id)
            .order_by(WebhookEndpoint.id)
        )
        return list((await session.execute(statement)).scalars())

    async def delete_endpoint(self, session: AsyncSession, endpoint_id: str) -> None:
        # Its deliveries go with it (ON DELETE CASCADE), so none is sent afterwards.
        await session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))

    async def disable_endpoint(
        self, session: AsyncSession, endpoint_id: str, reason: str, now: datetime
    ) -> None:
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id)
            .values(enabled=False, disabled_reason=reason, updated_at=now)
        )

    # Deliveries

    async def list_deliveries(
        self, session: AsyncSession, endpoint_id: str, *, limit: int, after: str | None
    ) -> list[WebhookDelivery]:
        # Ids start with their creation time, so id order is newest-first order.
        statement = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
        if after:
            statement = statement.where(WebhookDelivery.id < after)
        statement = statement.order_by(WebhookDelivery.id.desc()).limit(limit)
        return list((await session.execute(statement)).scalars())

    async def any_due(self, session: AsyncSession, now: datetime) -> bool:
        statement = (
            select(WebhookDelivery.id)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
            .limit(1)
        )
        return (await session.execute(statement)).first() is not None

    async def due_deliveries(
        self, session: AsyncSession, now: datetime, limit: int
    ) -> list[WebhookDelivery]:
        """Pending deliveries whose time has come, oldest first. On PostgreSQL the rows are
        locked and rows locked by another process are skipped; SQLite has one writer."""
        statement = (
            select(WebhookDelivery)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await session.execute(statement)).scalars())

    async def update_delivery(
        self,
        session: AsyncSession,
        delivery_id: str,
        *,
        attempts: int,
        values: dict[str, Any],
    ) -> bool:
        """Compare-and-set: apply ``values`` only while the delivery is still pending at
        ``attempts``, so a claim or an outcome is recorded once whoever else is racing."""
        statement = (
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == "pending",
                WebhookDelivery.attempts == attempts,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        result = await session.execute(statement)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def fail_pending_for_endpoint(
        self, session: AsyncSession, endpoint_id: str, reason: str, now: datetime
    ) -> None:
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "pending")
            .values(status="failed", last_error=reason, next_attempt_at=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )

    # The account's task-webhook secret

    async def task_secret(self, session: AsyncSession, account_id: str) -> str | None:
        statement = select(Account.webhook_secret).where(Account.id == account_id)
        return (await session.execute(statement)).scalar_one_or_none()

    async def set_task_secret(
        self, session: AsyncSession, account_id: str, secret: str, *, only_if_missing: bool
    ) -> None:
        statement = update(Account).where(Account.id == account_id)
        if only_if_missing:
            # Two first deliveries (or a delivery and a GET) racing must agree on one secret.
            statement = statement.where(Account.webhook_secret.is_(None))
        await session.execute(
            statement.values(webhook_secret=secret).execution_options(synchronize_session=False)
        )


webhook_repository = WebhookRepository()
