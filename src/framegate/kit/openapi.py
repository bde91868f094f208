"""The OpenAPI description: framegate's error envelope where FastAPI documents its own."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from framegate.exceptions import ErrorResponse


def use_error_envelope_in_openapi(app: FastAPI) -> None:
    """FastAPI documents request validation failures with its own 422 body; framegate
    answers them with its error envelope, so the description must say that instead."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            envelope = {"$ref": "#/components/schemas/ErrorResponse"}
            fastapi_422 = {"$ref": "#/components/schemas/HTTPValidationError"}
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    invalid = operation.get("responses", {}).get("422")
                    content = (invalid or {}).get("content", {}).get("application/json", {})
                    # Only FastAPI's own 422 body (dialects document their own envelopes).
                    if invalid is not None and content.get("schema") == fastapi_422:
                        invalid["description"] = "A field has an invalid value"
                        invalid["content"] = {"application/json": {"schema": envelope}}
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)
            components["ErrorResponse"] = ErrorResponse.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            for name, definition in components["ErrorResponse"].pop("$defs", {}).items():
                components[name] = definition
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
