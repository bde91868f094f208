from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from framegate.models.base import Base, TimestampMixin


class LedgerKind(StrEnum):
    grant = "grant"
    hold = "hold"
    capture = "capture"
    release = "release"
    refund = "refund"
    adjust = "adjust"


class LedgerEntry(TimestampMixin, Base):
    """An append-only credit movement.

    ``amount`` is the signed change of the account's available balance. A ``capture``
    converts held credits into spent ones, so it moves nothing (amount 0) and records
    the spent credits in ``credits``; every other kind has ``credits == abs(amount)``.
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        # A retried job or a racing cancel can never hold, capture or release twice.
        UniqueConstraint("task_id", "kind", name="uq_ledger_entries_task_kind"),
        Index("ix_ledger_entries_account_id_id", "account_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    )
    task_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    credits: Mapped[int] = mapped_column(BigInteger, nullable=False)
    balance_after: Mapped[int] = mapped_column(BigInteger, nullable=False)
    description: Mapped[str] = mapped_column(String(300), nullable=False, default="")
