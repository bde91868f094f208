"""Balance and ledger of the calling account."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from framegate.credits.schemas import CreditBalance, LedgerEntryObject, LedgerPage
from framegate.credits.service import credit_service
from framegate.dependencies import ReadSessionDep, require_scope
from framegate.exceptions import error_responses
from framegate.keys.scopes import Scope
from framegate.keys.service import AuthContext
from framegate.kit.pagination import PageAfter, PageLimit, one_page
from framegate.kit.views import from_row

router = APIRouter(tags=["credits"], responses=error_responses(401, 403))

CreditReader = Annotated[AuthContext, Depends(require_scope(Scope.credits_read))]


@router.get("/v1/credits", summary="Credit balance")
async def get_credits(session: ReadSessionDep, auth: CreditReader) -> CreditBalance:
    """Available and held credits of the calling account."""
    balance = await credit_service.balance(session, auth.account.id)
    return CreditBalance(account_id=auth.account.id, available=balance.available, held=balance.held)


@router.get("/v1/credits/ledger", summary="Credit ledger")
async def get_ledger(
    session: ReadSessionDep,
    auth: CreditReader,
    limit: PageLimit = 20,
    after: PageAfter = None,
) -> LedgerPage:
    """Every credit movement, newest first: grants, holds, captures and releases."""
    rows = await credit_service.ledger(session, auth.account.id, limit=limit + 1, after=after)
    page, has_more = one_page(rows, limit)
    return LedgerPage(
        data=[from_row(LedgerEntryObject, e) for e in page],
        has_more=has_more,
        next_cursor=page[-1].id if has_more and page else None,
    )
