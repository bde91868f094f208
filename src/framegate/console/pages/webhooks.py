"""The console's webhooks page: the account's endpoints (URL, event filters, status), their
secrets shown once, deliveries, a test event; the task-webhook secret. The shell lists the
events an endpoint can subscribe to; the rest is the page's module on /v1/webhooks."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from framegate.console.web import User, page
from framegate.webhooks.service import (
    ALL_EVENTS,
    DEFAULT_EVENTS,
    DEFAULT_ROTATION_GRACE_SECONDS,
    MAX_ROTATION_GRACE_SECONDS,
)

router = APIRouter(include_in_schema=False)

EVENT_HELP = {
    "task.completed": "a task completed",
    "task.failed": "a task failed (its credits released)",
    "task.cancelled": "a task was cancelled",
    "task.progress": "a running task's progress moved",
}


@router.get("/console/webhooks", response_class=HTMLResponse)
async def webhooks_page(request: Request, user: User) -> Response:
    events = [
        {"name": event, "help": EVENT_HELP.get(event, ""), "checked": event in DEFAULT_EVENTS}
        for event in ALL_EVENTS
    ]
    return page(
        request,
        user,
        "webhooks",
        events=events,
        default_grace=DEFAULT_ROTATION_GRACE_SECONDS,
        max_grace=MAX_ROTATION_GRACE_SECONDS,
    )
