"""Operator routes (admin scope): accounts and credit grants."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from framegate.accounts.schemas import (
    PLAN_NAME_PATTERN,
    AccountCreate,
    AccountList,
    AccountObject,
    AccountUpdate,
    CreatedAccountObject,
    CreditGrant,
    PlanBody,
    PlanList,
    PlanObject,
)
from framegate.dependencies import ReadSessionDep, RuntimeDep, SessionDep, require_scope
from framegate.exceptions import error_responses
from framegate.keys.scopes import Scope
from framegate.keys.service import AuthContext
from framegate.kit.views import from_row
from framegate.limits.service import PlanLimits
from framegate.models import Account

router = APIRouter(prefix="/v1/admin", tags=["admin"], responses=error_responses(401, 403))

Admin = Annotated[AuthContext, Depends(require_scope(Scope.admin))]
AccountId = Annotated[str, Path(max_length=40)]


def _view(account: Account) -> AccountObject:
    return from_row(AccountObject, account)


@router.post(
    "/accounts", status_code=201, responses=error_responses(422), summary="Create an account"
)
async def create_account(
    body: AccountCreate, runtime: RuntimeDep, session: SessionDep, _: Admin
) -> CreatedAccountObject:
    """A new tenant with opening credits and a first API key."""
    created = await runtime.accounts.create(
        session, name=body.name, credits=body.credits, plan=body.plan
    )
    return from_row(
        CreatedAccountObject,
        created.account,
        api_key=created.key.secret,
        api_key_id=created.key.key.id,
    )


@router.get("/accounts", summary="List accounts")
async def list_accounts(runtime: RuntimeDep, session: ReadSessionDep, _: Admin) -> AccountList:
    """Every account on this installation."""
    return AccountList(data=[_view(a) for a in await runtime.accounts.list_accounts(session)])


@router.post(
    "/accounts/{account_id}/credits", responses=error_responses(404, 422), summary="Grant credits"
)
async def grant_credits(
    account_id: AccountId, body: CreditGrant, runtime: RuntimeDep, session: SessionDep, _: Admin
) -> AccountObject:
    """Add credits to an account (a ledger grant)."""
    account = await runtime.accounts.grant(session, account_id, body.credits, body.description)
    return _view(account)


@router.patch(
    "/accounts/{account_id}", responses=error_responses(404, 422), summary="Update an account"
)
async def update_account(
    account_id: AccountId, body: AccountUpdate, runtime: RuntimeDep, session: SessionDep, _: Admin
) -> AccountObject:
    """Rename, move to another plan, or disable (its keys then answer 401) an account."""
    account = await runtime.accounts.update(
        session, account_id, name=body.name, plan=body.plan, is_active=body.is_active
    )
    return _view(account)


def _plan_view(limits: PlanLimits) -> PlanObject:
    return from_row(PlanObject, limits)


@router.put("/plans/{name}", responses=error_responses(422), summary="Create or replace a plan")
async def put_plan(
    name: Annotated[str, Path(min_length=1, max_length=40, pattern=PLAN_NAME_PATTERN)],
    body: PlanBody,
    runtime: RuntimeDep,
    session: SessionDep,
    _: Admin,
) -> PlanObject:
    """Limits for every account on this plan: concurrent tasks and requests per minute."""
    limits = PlanLimits(name=name, **body.model_dump())
    await runtime.limits.save_plan(session, limits)
    return _plan_view(limits)


@router.get("/plans", summary="List plans")
async def list_plans(runtime: RuntimeDep, session: ReadSessionDep, _: Admin) -> PlanList:
    """Every plan, and the defaults for accounts whose plan has no row."""
    plans = await runtime.limits.list_plans(session)
    return PlanList(
        data=[_plan_view(p) for p in plans], default=_plan_view(runtime.limits.defaults)
    )
