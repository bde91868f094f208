"""The credit ledger: grant, hold on submit, capture on success, release on failure/cancel."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from framegate.credits.repository import credit_repository
from framegate.credits.schemas import MAX_CREDITS
from framegate.exceptions import InvalidValue, NotFound, PaymentRequired
from framegate.models import LedgerEntry, LedgerKind, Task


class InsufficientCredits(PaymentRequired):
    code = "insufficient_credits"


@dataclass(frozen=True, slots=True)
class Balance:
    available: int
    held: int


class CreditService:
    async def grant(
        self, session: AsyncSession, account_id: str, amount: int, description: str = ""
    ) -> LedgerEntry:
        if not 0 < amount <= MAX_CREDITS:
            raise InvalidValue(
                f"credits to grant must be a positive integer up to {MAX_CREDITS}.",
                param="credits",
            )
        balance = await credit_repository.credit(session, account_id, amount)
        return await credit_repository.add_entry(
            session,
            account_id=account_id,
            kind=LedgerKind.grant,
            amount=amount,
            credits=amount,
            balance_after=balance,
            description=description or "credit grant",
        )

    async def check_covered(self, session: AsyncSession, account_id: str, amount: int) -> None:
        """402 when the available balance does not cover ``amount`` now; reads only.

        A cheap early refusal, made before a request does expensive work (decoding its
        images); ``hold`` stays the check that counts."""
        available = await credit_repository.balance(session, account_id) or 0
        if available < amount:
            raise _insufficient(amount, available)

    async def hold(self, session: AsyncSession, task: Task, amount: int) -> None:
        """Reserve the task's price; 402 when the available balance does not cover it."""
        balance = await credit_repository.debit_if_covered(session, task.account_id, amount)
        if balance is None:
            available = await credit_repository.balance(session, task.account_id) or 0
            raise _insufficient(amount, available)
        task.credits_reserved = amount
        await credit_repository.add_entry(
            session,
            account_id=task.account_id,
            task_id=task.id,
            kind=LedgerKind.hold,
            amount=-amount,
            credits=amount,
            balance_after=balance,
            description=f"hold for {task.model}",
        )

    async def capture(self, session: AsyncSession, task: Task, used: int) -> None:
        """Spend ``used`` of the hold (never more than was held) and give back the rest."""
        used = min(used, task.credits_reserved)
        balance = await credit_repository.balance(session, task.account_id) or 0
        await credit_repository.add_entry(
            session,
            account_id=task.account_id,
            task_id=task.id,
            kind=LedgerKind.capture,
            amount=0,
            credits=used,
            balance_after=balance,
            description=f"{task.model} completed",
        )
        task.credits_used = used
        unused = task.credits_reserved - used
        if unused:
            await self._give_back(session, task, unused, "unused part of the hold")

    async def release(self, session: AsyncSession, task: Task, reason: str) -> None:
        """Return the whole hold (failure or cancel): the task costs nothing."""
        if task.credits_reserved:
            await self._give_back(session, task, task.credits_reserved, reason)

    async def _give_back(self, session: AsyncSession, task: Task, amount: int, why: str) -> None:
        balance = await credit_repository.credit(session, task.account_id, amount)
        await credit_repository.add_entry(
            session,
            account_id=task.account_id,
            task_id=task.id,
            kind=LedgerKind.release,
            amount=amount,
            credits=amount,
            balance_after=balance,
            description=why,
        )
        task.credits_refunded = amount

    async def balance(self, session: AsyncSession, account_id: str) -> Balance:
        available = await credit_repository.balance(session, account_id)
        if available is None:
            raise NotFound("Account not found.", param="account_id")
        return Balance(available=available, held=await credit_repository.held(session, account_id))

    async def ledger(
        self, session: AsyncSession, account_id: str, *, limit: int, after: str | None
    ) -> list[LedgerEntry]:
        return await credit_repository.list_entries(session, account_id, limit=limit, after=after)


def _insufficient(amount: int, available: int) -> InsufficientCredits:
    return InsufficientCredits(
        f"This request costs {amount} credits but the account has {available} available. "
        "Add credits or choose a shorter duration or lower resolution.",
    )


credit_service = CreditService()
