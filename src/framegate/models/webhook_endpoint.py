from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from framegate.models.base import Base, TimestampMixin


class WebhookEndpoint(TimestampMixin, Base):
    """An account's webhook receiver: where task events are delivered, signed with
    its own ``whsec_`` secret (Standard Webhooks)."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True, nullable=False
    )
    url: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    # Kept in clear: deliveries are signed with it. Shown to the account once.
    secret: Mapped[str] = mapped_column(String(100), nullable=False)
    # The secret a rotation replaced: deliveries carry its signature beside the current
    # one until previous_secret_expires_at, so receivers can switch without a gap.
    previous_secret: Mapped[str | None] = mapped_column(String(100), nullable=True)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    events: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    enabled: Mapped[bool] = mapped_column(nullable=False, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(300), nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(nullable=True)
