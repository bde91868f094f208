"""The console's tasks page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from framegate.console.web import User, page

router = APIRouter(include_in_schema=False)


@router.get("/console/tasks", response_class=HTMLResponse)
async def tasks_page(request: Request, user: User) -> Response:
    return page(request, user, "tasks")
