from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from framegate.models.base import Base, TimestampMixin


class Account(TimestampMixin, Base):
    """A tenant. ``credit_balance`` is the available balance, kept equal to its ledger's sum."""

    __tablename__ = "accounts"
    __table_args__ = (CheckConstraint("credit_balance >= 0", name="balance_non_negative"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    plan: Mapped[str] = mapped_column(String(40), nullable=False, default="default")
    credit_balance: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    is_active: Mapped[bool] = mapped_column(nullable=False, default=True)
    # Signs deliveries to tasks' own webhook_url (endpoints have their own secrets).
    webhook_secret: Mapped[str | None] = mapped_column(String(100), nullable=True)
