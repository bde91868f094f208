"""Every router of the API, in one place."""

from __future__ import annotations

from fastapi import APIRouter

from framegate.accounts.endpoints import router as accounts_router
from framegate.catalog.endpoints import router as catalog_router
from framegate.compat import aimlapi, openai_videos, pixelapi, pixverse
from framegate.console import web as console
from framegate.console.pages import (
    admin,
    credits,
    keys,
    models,
    overview,
    playground,
    tasks,
    usage,
    webhooks,
)
from framegate.credits.endpoints import router as credits_router
from framegate.keys.endpoints import router as keys_router
from framegate.kit.dialects import Dialect, dialects
from framegate.storage.endpoints import router as files_router
from framegate.tasks.endpoints import router as tasks_router
from framegate.uploads.endpoints import router as uploads_router
from framegate.usage.endpoints import router as usage_router
from framegate.webhooks.endpoints import router as webhooks_router

meta_router = APIRouter(tags=["meta"])


@meta_router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """Answers while the process is up."""
    return {"status": "ok"}


# Included one by one into the app (not nested under one parent router): each level of
# nesting is one more matching pass on every request. The polled routes come first.
ROUTERS: tuple[APIRouter, ...] = (
    tasks_router,
    catalog_router,
    credits_router,
    keys_router,
    files_router,
    accounts_router,
    webhooks_router,
    uploads_router,
    usage_router,
    meta_router,
)

# Other vendors' dialects: the same services in their request and error shapes. Their
# routers come after the native ones; their prefixes decide which envelope an error gets
# wherever it is raised (routes, middlewares, unknown paths).
DIALECTS: tuple[Dialect, ...] = (
    openai_videos.DIALECT,
    pixelapi.DIALECT,
    pixverse.DIALECT,
    aimlapi.DIALECT,
)
ROUTERS += (openai_videos.router, pixelapi.router, pixverse.router, aimlapi.router)

# The web console (not in the OpenAPI description): its pages render errors as pages.
DIALECTS += (console.DIALECT,)
ROUTERS += (
    console.router,
    *(
        module.router
        for module in (overview, playground, tasks, usage, credits, keys, webhooks, models, admin)
    ),
    console.fallback_router,
)
# Native paths inside a dialect's prefix.
NATIVE_PATHS = ("/v1/videos/generations",)
dialects.install(DIALECTS, native=NATIVE_PATHS)
