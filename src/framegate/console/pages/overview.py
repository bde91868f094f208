"""The console's overview page: the balance, today's tasks, the last 30 days' spend (the
usage page's server-drawn plot) and the latest tasks, all read by the page's module."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from framegate.console.web import User, page
from framegate.keys.scopes import Scope, has_scope

router = APIRouter(include_in_schema=False)


@router.get("/console", response_class=HTMLResponse)
async def overview_page(request: Request, user: User) -> Response:
    # The page needs credits:read; its task panels also tasks:read, which a key may lack.
    can_read_tasks = has_scope(list(user.auth.key.scopes), Scope.tasks_read)
    return page(request, user, "overview", can_read_tasks=can_read_tasks)
