"""The console's usage page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from framegate.console.web import User, page

router = APIRouter(include_in_schema=False)


@router.get("/console/usage", response_class=HTMLResponse)
async def usage_page(request: Request, user: User) -> Response:
    return page(request, user, "usage")
