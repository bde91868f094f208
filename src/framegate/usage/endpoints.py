"""GET /v1/usage."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from framegate.dependencies import ReadSessionDep, require_scope
from framegate.exceptions import error_responses
from framegate.keys.scopes import Scope
from framegate.keys.service import AuthContext
from framegate.kit.time import parse_instant, utcnow
from framegate.usage.schemas import Usage
from framegate.usage.service import usage_service

router = APIRouter(tags=["usage"], responses=error_responses(401, 403))

CreditReader = Annotated[AuthContext, Depends(require_scope(Scope.credits_read))]


@router.get("/v1/usage", responses=error_responses(422), summary="Usage")
async def get_usage(
    session: ReadSessionDep,
    auth: CreditReader,
    group_by: Annotated[
        str, Query(description="day, model, key, or metadata.<tag> (a metadata key)")
    ] = "day",
    start: Annotated[
        str | None,
        Query(
            alias="from",
            max_length=40,
            description="ISO 8601 date or time (UTC), or integer Unix seconds; default 30 days ago",
        ),
    ] = None,
    end: Annotated[
        str | None,
        Query(
            alias="to",
            max_length=40,
            description="ISO 8601 or integer Unix seconds, exclusive; default now",
        ),
    ] = None,
) -> Usage:
    """Completed tasks, seconds of video, images and credits spent, grouped; computed from
    the credit ledger (a task counts on the day its credits were captured)."""
    until = parse_instant(end, param="to") if end is not None else utcnow()
    since = parse_instant(start, param="from") if start is not None else until - timedelta(days=30)
    return await usage_service.usage(
        session, auth.account.id, group_by=group_by, start=since, end=until
    )
