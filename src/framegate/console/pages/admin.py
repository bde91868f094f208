"""The console's admin page (``admin`` keys only, enforced by ``page``): accounts, credit
grants and plans, through the /v1/admin API by the page's module."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from framegate.console.web import User, page

router = APIRouter(include_in_schema=False)


@router.get("/console/admin", response_class=HTMLResponse)
async def admin_page(request: Request, user: User) -> Response:
    return page(request, user, "admin")
