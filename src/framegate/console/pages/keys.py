"""The console's keys page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from framegate.console.web import User, page

router = APIRouter(include_in_schema=False)


@router.get("/console/keys", response_class=HTMLResponse)
async def keys_page(request: Request, user: User) -> Response:
    return page(request, user, "keys")
