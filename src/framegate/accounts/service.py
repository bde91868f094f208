"""Accounts (tenants): created by operators with a first key and opening credits."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from framegate.accounts.repository import account_repository
from framegate.accounts.schemas import PLAN_NAME_PATTERN
from framegate.credits.service import credit_service
from framegate.exceptions import InvalidValue, NotFound
from framegate.keys.service import APIKeyService, CreatedKey
from framegate.kit.ids import new_id
from framegate.models import Account


@dataclass(frozen=True, slots=True)
class CreatedAccount:
    account: Account
    key: CreatedKey


class AccountService:
    def __init__(self, keys: APIKeyService) -> None:
        self._keys = keys

    async def create(
        self,
        session: AsyncSession,
        *,
        name: str,
        credits: int = 0,
        plan: str = "default",
        scopes: list[str] | None = None,
    ) -> CreatedAccount:
        if credits < 0:
            raise InvalidValue("credits must be >= 0.", param="credits")
        account = await account_repository.add(
            session,
            Account(id=new_id("acct"), name=_name(name), plan=_plan_name(plan), credit_balance=0),
        )
        if credits:
            await credit_service.grant(session, account.id, credits, "opening credits")
        key = await self._keys.create(session, account.id, name="default", scopes=scopes)
        return CreatedAccount(account=account, key=key)

    async def get(self, session: AsyncSession, account_id: str) -> Account:
        account = await account_repository.get(session, account_id)
        if account is None:
            raise NotFound(f"No account {account_id!r}.", param="account_id")
        return account

    async def list_accounts(self, session: AsyncSession) -> list[Account]:
        return await account_repository.list_all(session)

    async def grant(
        self, session: AsyncSession, account_id: str, credits: int, description: str = ""
    ) -> Account:
        """Add credits (a ledger grant); the account as it now is."""
        account = await self.get(session, account_id)
        await credit_service.grant(session, account.id, credits, description)
        await session.flush()
        await session.refresh(account)
        return account

    async def update(
        self,
        session: AsyncSession,
        account_id: str,
        *,
        name: str | None = None,
        plan: str | None = None,
        is_active: bool | None = None,
    ) -> Account:
        """Rename, move to another plan, disable (its keys then answer 401) or enable."""
        account = await self.get(session, account_id)
        if name is not None:
            account.name = _name(name)
        if plan is not None:
            account.plan = _plan_name(plan)
        if is_active is not None:
            account.is_active = is_active
        # Verified keys carry their account: let the change apply to the next request.
        await self._keys.keys_changed(session)
        return account


def _name(name: str) -> str:
    if not name.strip():
        raise InvalidValue("An account needs a name.", param="name")
    return name.strip()


def _plan_name(plan: str) -> str:
    if not re.fullmatch(PLAN_NAME_PATTERN, plan) or len(plan) > 40:
        raise InvalidValue(
            f"{plan!r} cannot be a plan name: use up to 40 letters, digits, '_', '.' or '-'.",
            param="plan",
        )
    return plan
