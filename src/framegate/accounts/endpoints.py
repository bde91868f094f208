"""Operator routes (admin scope): accounts and credit grants."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from framegate.accounts.schemas import (
    AccountCreate,
    AccountList,
    AccountObject,
    CreatedAccountObject,
    CreditGrant,
)
from framegate.credits.service import credit_service
from framegate.dependencies import ReadSessionDep, RuntimeDep, SessionDep, require_scope
from framegate.exceptions import error_responses
from framegate.keys.scopes import Scope
from framegate.keys.service import AuthContext
from framegate.kit.time import to_unix
from framegate.models import Account

router = APIRouter(prefix="/v1/admin", tags=["admin"])

Admin = Annotated[AuthContext, Depends(require_scope(Scope.admin))]
AccountId = Annotated[str, Path(max_length=40)]


def _view(account: Account) -> AccountObject:
    return AccountObject(
        id=account.id,
        name=account.name,
        plan=account.plan,
        credit_balance=account.credit_balance,
        created_at=to_unix(account.created_at) or 0,
    )


@router.post(
    "/accounts",
    status_code=201,
    response_model=CreatedAccountObject,
    responses=error_responses(401, 403, 422),
    summary="Create an account",
)
async def create_account(
    body: AccountCreate, runtime: RuntimeDep, session: SessionDep, _: Admin
) -> CreatedAccountObject:
    """A new tenant with opening credits and a first API key."""
    created = await runtime.accounts.create(
        session, name=body.name, credits=body.credits, plan=body.plan
    )
    await session.commit()
    return CreatedAccountObject(
        **_view(created.account).model_dump(),
        api_key=created.key.secret,
        api_key_id=created.key.key.id,
    )


@router.get(
    "/accounts",
    response_model=AccountList,
    responses=error_responses(401, 403),
    summary="List accounts",
)
async def list_accounts(runtime: RuntimeDep, session: ReadSessionDep, _: Admin) -> AccountList:
    """Every account on this installation."""
    return AccountList(data=[_view(a) for a in await runtime.accounts.list_accounts(session)])


@router.post(
    "/accounts/{account_id}/credits",
    response_model=AccountObject,
    responses=error_responses(401, 403, 404, 422),
    summary="Grant credits",
)
async def grant_credits(
    account_id: AccountId, body: CreditGrant, runtime: RuntimeDep, session: SessionDep, _: Admin
) -> AccountObject:
    """Add credits to an account (a ledger grant)."""
    account = await runtime.accounts.get(session, account_id)
    await credit_service.grant(session, account.id, body.credits, body.description)
    await session.commit()
    await session.refresh(account)
    return _view(account)
