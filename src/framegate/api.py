"""Every router of the API, in one place."""

from __future__ import annotations

from fastapi import APIRouter

from framegate.accounts.endpoints import router as accounts_router
from framegate.catalog.endpoints import router as catalog_router
from framegate.credits.endpoints import router as credits_router
from framegate.keys.endpoints import router as keys_router
from framegate.storage.endpoints import router as files_router
from framegate.tasks.endpoints import router as tasks_router

router = APIRouter()
router.include_router(tasks_router)
router.include_router(catalog_router)
router.include_router(credits_router)
router.include_router(keys_router)
router.include_router(files_router)
router.include_router(accounts_router)


@router.get("/healthz", tags=["meta"], summary="Liveness")
async def healthz() -> dict[str, str]:
    """Answers while the process is up."""
    return {"status": "ok"}
