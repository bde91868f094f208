from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from framegate.models.base import Base, TimestampMixin


class APIKey(TimestampMixin, Base):
    """An API key. Only a keyed hash of the secret is stored; ``display`` is a short hint."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True, nullable=False
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    display: Mapped[str] = mapped_column(String(40), nullable=False)
    scopes: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    spend_cap: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Set when revoked, or in the future when a rotation grants the old secret a grace period.
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    rotated_to_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
