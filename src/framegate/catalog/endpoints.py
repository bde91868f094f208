"""Model catalog and cost estimates."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from framegate.catalog.schemas import Estimate, ModelList, ModelObject
from framegate.dependencies import RuntimeDep
from framegate.exceptions import NotFound, error_responses
from framegate.tasks.schemas import EstimateRequest

router = APIRouter(tags=["models"])


@router.get("/v1/models", response_model=ModelList, summary="List models")
async def list_models(runtime: RuntimeDep) -> ModelList:
    """Every route with its capabilities, pricing and whether it is available here."""
    catalog = runtime.catalog
    return ModelList(data=[catalog.to_object(route) for route in catalog.routes()])


@router.get(
    "/v1/models/{model_id:path}",
    response_model=ModelObject,
    responses=error_responses(404),
    summary="Retrieve a model",
)
async def get_model(
    model_id: Annotated[str, Path(max_length=120)], runtime: RuntimeDep
) -> ModelObject:
    """One route by id or alias."""
    route = runtime.catalog.get(model_id)
    if route is None:
        raise NotFound(f"No model {model_id!r}; GET /v1/models lists them.", param="model_id")
    return runtime.catalog.to_object(route)


@router.post(
    "/v1/estimates",
    response_model=Estimate,
    responses=error_responses(422),
    summary="Estimate a request's cost",
)
async def create_estimate(body: EstimateRequest, runtime: RuntimeDep) -> Estimate:
    """What a generation request would cost in credits and roughly how long it would take."""
    catalog = runtime.catalog
    route = catalog.get(body.model)
    kind = route.kind if route is not None else "video"
    route = catalog.require(body.model, kind=kind)
    if route.kind == "image":
        plan = catalog.plan_image(route, size=body.size, n=body.n)
    else:
        plan = catalog.plan_video(route, body)
    return plan.as_estimate()
