"""The console's keys page: the account's API keys — create (scopes, spend cap; the secret
shown once), rotate, revoke. The shell offers only the scopes the session's key may grant
(the API refuses the others anyway); the rest is the page's module on /v1/keys."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from framegate.console.web import User, page
from framegate.keys.scopes import ALL_SCOPES, DEFAULT_SCOPES, has_scope

router = APIRouter(include_in_schema=False)

SCOPE_HELP = {
    "videos:write": "submit and cancel video tasks, upload images",
    "images:write": "generate images, upload images",
    "tasks:read": "list and read tasks, follow their progress",
    "credits:read": "read credits, the ledger and usage",
    "keys:manage": "create, rotate and revoke keys; manage webhooks",
    "admin": "everything, including accounts, grants and plans",
}


@router.get("/console/keys", response_class=HTMLResponse)
async def keys_page(request: Request, user: User) -> Response:
    held = list(user.auth.key.scopes)
    grantable = [scope for scope in ALL_SCOPES if has_scope(held, scope)]
    scopes = [
        {"name": scope, "help": SCOPE_HELP.get(scope, ""), "checked": scope in DEFAULT_SCOPES}
        for scope in grantable
    ]
    return page(request, user, "keys", scopes=scopes)
