from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from framegate.kit.views import UnixTime

# Far beyond any real balance, and within a signed 64-bit column.
MAX_CREDITS = 2**53


class CreditBalance(BaseModel):
    object: Literal["credit_balance"] = "credit_balance"
    account_id: str
    available: int = Field(description="Credits that new tasks can hold.")
    held: int = Field(description="Credits held by queued and processing tasks.")


class LedgerEntryObject(BaseModel):
    id: str
    object: Literal["ledger_entry"] = "ledger_entry"
    kind: Literal["grant", "hold", "capture", "release", "refund", "adjust"]
    amount: int = Field(description="Signed change of the available balance.")
    credits: int = Field(description="Credits moved; for a capture, the credits spent.")
    balance_after: int
    task_id: str | None
    description: str
    created_at: UnixTime


class LedgerPage(BaseModel):
    object: Literal["list"] = "list"
    data: list[LedgerEntryObject]
    has_more: bool
    next_cursor: str | None = None
