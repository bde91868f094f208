"""The console's models page: the catalog (GET /v1/models) — prices, capabilities,
availability and each route's health, fetched by the page's module."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from framegate.console.web import User, page

router = APIRouter(include_in_schema=False)


@router.get("/console/models", response_class=HTMLResponse)
async def models_page(request: Request, user: User) -> Response:
    return page(request, user, "models")
