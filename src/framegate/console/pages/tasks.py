"""The console's tasks page (a filtered, paged gallery) and a task's own page. Both are
shells: their module reads GET /v1/tasks and GET /v1/tasks/{id} and cancels through
POST /v1/tasks/{id}/cancel, as the session's key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response

from framegate.console.web import PAGES_BY_NAME, User, page, render
from framegate.keys.scopes import Scope, has_scope

router = APIRouter(include_in_schema=False)

TaskId = Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]


@router.get("/console/tasks", response_class=HTMLResponse)
async def tasks_page(request: Request, user: User) -> Response:
    return page(request, user, "tasks")


@router.get("/console/tasks/{task_id}", response_class=HTMLResponse)
async def task_page(request: Request, user: User, task_id: TaskId) -> Response:
    """One task: the page's module loads it (the API's 404 shows as an alert)."""
    scopes = list(user.auth.key.scopes)
    entry = PAGES_BY_NAME["tasks"]
    if entry.scope is not None and not has_scope(scopes, entry.scope):
        return page(request, user, "tasks")  # the page that says which scope is missing
    return render(
        request,
        "task.html",
        user=user,
        page=entry,
        task_id=task_id,
        # Cancelling needs the write scope of the task's kind too; the API decides.
        can_cancel_video=has_scope(scopes, Scope.videos_write),
        can_cancel_image=has_scope(scopes, Scope.images_write),
    )
