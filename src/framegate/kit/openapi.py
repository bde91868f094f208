"""The OpenAPI description: what every route answers, including what FastAPI cannot see.

FastAPI documents each route from its signature. What answers before or around a route is
added here, once, for every operation it applies to: framegate's error envelope instead of
FastAPI's 422 body, the errors the middlewares (request guard, authentication, body size
limit, idempotency) and the shared key dependency answer, in the envelope and with the
status of the dialect a path belongs to, and the idempotency key headers every POST reads.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from framegate.exceptions import (
    BadRequest,
    Conflict,
    ErrorResponse,
    Forbidden,
    FramegateError,
    InvalidValue,
    PayloadTooLarge,
    Unauthorized,
    error_responses,
)
from framegate.idempotency.middleware import HEADER, MAX_KEY_LENGTH, SKIPPED_PATHS
from framegate.kit.dialects import dialects
from framegate.kit.responses import error_response
from framegate.limits.service import RateLimited

_COMPONENTS = "#/components/schemas/"
_FASTAPI_422 = {"$ref": f"{_COMPONENTS}HTTPValidationError"}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 1},
    }
}
# What the idempotency middleware takes as a key (it strips surrounding spaces first).
_KEY_PATTERN = r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$"

Operation = dict[str, Any]


@dataclass(frozen=True, slots=True)
class _SharedError:
    """An error answered outside a route's own code, and the operations that can get it."""

    applies: Callable[[str, str, Operation], bool]
    error: FramegateError
    description: str
    # Answered with Retry-After: listed on its own, with the header, even where a range
    # (4XX) already covers its status.
    retry_after: bool = False


def _anywhere(path: str, method: str, operation: Operation) -> bool:
    return True


def _authenticated(path: str, method: str, operation: Operation) -> bool:
    # The authentication middleware checks any key presented, on every route but the
    # liveness probe.
    return path != "/healthz"


def _takes_key(path: str, method: str, operation: Operation) -> bool:
    return bool(operation.get("security"))


def _takes_body(path: str, method: str, operation: Operation) -> bool:
    return "requestBody" in operation


def _reads_idempotency_key(path: str, method: str, operation: Operation) -> bool:
    return method == "post" and not path.startswith(SKIPPED_PATHS)


def _shared_errors() -> tuple[_SharedError, ...]:
    return (
        # The request guard: text that cannot be stored, anywhere in the request.
        _SharedError(
            _anywhere,
            InvalidValue("NUL.", code="invalid_text"),
            "A path segment, query parameter or header holds text that cannot be stored "
            "(NUL, invalid UTF-8)",
        ),
        # The authentication middleware: a key that is presented must be valid, and
        # requests without one (or with wrong ones) are limited per client address.
        _SharedError(_authenticated, Unauthorized("Invalid key."), _described(401)),
        _SharedError(
            _authenticated,
            RateLimited("Too many.", code="client_rate_limit_exceeded"),
            _described(429),
            retry_after=True,
        ),
        # The key dependency: the scope and the key's request rate.
        _SharedError(_takes_key, Forbidden("Missing scope."), _described(403)),
        _SharedError(
            _takes_key,
            RateLimited("Over the key's requests per minute."),
            _described(429),
            retry_after=True,
        ),
        # The request guard's JSON parsing, request validation and the body size limit.
        _SharedError(
            _takes_body,
            BadRequest("The request needs a body.", code="missing_body"),
            "No body, or a body that is not JSON (or not the form the route reads)",
        ),
        _SharedError(
            _takes_body,
            PayloadTooLarge("Too large.", code="request_too_large"),
            "The request body is larger than FRAMEGATE_MAX_REQUEST_BYTES",
        ),
        # The idempotency middleware.
        _SharedError(
            _reads_idempotency_key,
            BadRequest("Invalid key.", code="invalid_idempotency_key"),
            "Malformed Idempotency-Key",
        ),
        _SharedError(
            _reads_idempotency_key,
            Conflict("Still running.", code="idempotency_request_in_progress"),
            "A request with this Idempotency-Key is still running: retry after Retry-After",
            retry_after=True,
        ),
        _SharedError(
            _reads_idempotency_key,
            InvalidValue("Reused.", code="idempotency_key_reused"),
            "This Idempotency-Key was used with another request",
        ),
    )


def _described(status: int) -> str:
    return str(error_responses(status)[status]["description"])


def use_error_envelope_in_openapi(app: FastAPI) -> None:
    """Serve the description with framegate's additions (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            shared = _shared_errors()
            for path, method, operation in _operations(schema):
                _use_error_envelope(path, operation, components)
                _document_idempotency_keys(path, method, operation)
                _document_shared_errors(path, method, operation, shared, components)
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)
            _add_model(components, ErrorResponse)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, Operation]]:
    for path, methods in schema.get("paths", {}).items():
        for method, operation in methods.items():
            yield path, method, operation


def _use_error_envelope(path: str, operation: Operation, components: dict[str, Any]) -> None:
    """FastAPI documents request validation failures with its own 422 body; framegate
    answers them with its error envelope, or the envelope of the path's dialect."""
    invalid = operation.get("responses", {}).get("422")
    content = (invalid or {}).get("content", {}).get("application/json", {})
    if invalid is not None and content.get("schema") == _FASTAPI_422:
        model = dialects.error_model(path) or ErrorResponse
        invalid["description"] = _described(422)
        invalid["content"] = {"application/json": {"schema": _ref(model)}}
        _add_model(components, model)


def _document_idempotency_keys(path: str, method: str, operation: Operation) -> None:
    if not _reads_idempotency_key(path, method, operation):
        return
    names = [HEADER.decode().title()]
    alias = dialects.idempotency_header(path)
    if alias is not None:
        names.append(alias)
    parameters = operation.setdefault("parameters", [])
    for name in names:
        parameters.append(
            {
                "name": name,
                "in": "header",
                "required": False,
                "description": "Makes the POST safe to retry: a repeat with the same key and "
                "the same request answers the first response again (Idempotent-Replayed: "
                "true) instead of running twice. Keys are per account, kept at least 24 h.",
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_KEY_LENGTH,
                    "pattern": _KEY_PATTERN,
                },
            }
        )


def _document_shared_errors(
    path: str,
    method: str,
    operation: Operation,
    shared: tuple[_SharedError, ...],
    components: dict[str, Any],
) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    model = dialects.error_model(path) or ErrorResponse
    for item in shared:
        if not item.applies(path, method, operation):
            continue
        status = _answered_status(path, method, item.error)
        key = str(status)
        covering = responses.get(f"{key[0]}XX")
        if key not in responses and (covering is None or item.retry_after):
            # A status a range covers is listed on its own only to document its headers.
            content = {"application/json": {"schema": _ref(model)}}
            responses[key] = {
                "description": item.description,
                "content": copy.deepcopy(covering["content"]) if covering else content,
            }
            _add_model(components, model)
        if item.retry_after:
            responses[key].setdefault("headers", {}).update(_RETRY_AFTER)
    # Limits (429) and failing models (503) say when to retry, wherever they are answered.
    for key in ("429", "503"):
        if key in responses:
            responses[key].setdefault("headers", {}).update(_RETRY_AFTER)
    operation["responses"] = dict(sorted(responses.items()))


def _answered_status(path: str, method: str, error: FramegateError) -> int:
    """The status ``error`` is answered with at ``path`` (dialects have their own)."""
    scope = {"type": "http", "method": method.upper(), "path": path, "headers": []}
    return error_response(scope, error).status_code


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"{_COMPONENTS}{model.__name__}"}


def _add_model(components: dict[str, Any], model: type[BaseModel]) -> None:
    if model.__name__ in components:
        return
    definition = model.model_json_schema(ref_template=_COMPONENTS + "{model}")
    for name, nested in definition.pop("$defs", {}).items():
        components.setdefault(name, nested)
    components[model.__name__] = definition
