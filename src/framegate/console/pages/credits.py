"""The console's credits page: the balance and the ledger, paged with the API's cursor
(its module reads GET /v1/credits and GET /v1/credits/ledger)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from framegate.console.web import User, page

router = APIRouter(include_in_schema=False)


@router.get("/console/credits", response_class=HTMLResponse)
async def credits_page(request: Request, user: User) -> Response:
    return page(request, user, "credits")
