"""The console's playground page: pick a model, set what its capabilities allow, see the
price, generate, watch the task's progress and play the clip, with the same request as
curl, Python SDK and OpenAI SDK code. The page's script does all of it through the JSON API
with the session (static/pages/playground.js)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from framegate.console.web import User, page
from framegate.runtime import Runtime

router = APIRouter(include_in_schema=False)


def api_base_url(request: Request) -> str:
    """Where the code snippets send their requests: the installation's public URL, or the
    address this page was reached at."""
    runtime: Runtime = request.app.state.runtime
    public = runtime.settings.public_url.rstrip("/")
    return public or str(request.base_url).rstrip("/")


@router.get("/console/playground", response_class=HTMLResponse)
async def playground_page(request: Request, user: User) -> Response:
    return page(request, user, "playground", base_url=api_base_url(request))
