"""Accounts (tenants): created by operators with a first key and opening credits."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from framegate.accounts.repository import account_repository
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
        if not name.strip():
            raise InvalidValue("An account needs a name.", param="name")
        if credits < 0:
            raise InvalidValue("credits must be >= 0.", param="credits")
        account = await account_repository.add(
            session, Account(id=new_id("acct"), name=name.strip(), plan=plan, credit_balance=0)
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
