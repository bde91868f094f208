"""/openapi.json documents every route, its body and its error responses."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema_rs
from fastapi import FastAPI

from framegate.exceptions import (
    BadRequest,
    Conflict,
    Forbidden,
    FramegateError,
    InvalidValue,
    PayloadTooLarge,
    Unauthorized,
)
from framegate.idempotency.middleware import HEADER, SKIPPED_PATHS, IdempotencyMiddleware
from framegate.kit.responses import error_response
from framegate.limits.service import RateLimited

EXPECTED = {
    ("post", "/v1/async/videos/generations"),
    ("post", "/v1/videos/generations"),
    ("post", "/v1/images/generations"),
    ("get", "/v1/tasks/{task_id}"),
    ("get", "/v1/tasks"),
    ("get", "/v1/models"),
    ("get", "/v1/models/{model_id}"),
    ("post", "/v1/estimates"),
    ("get", "/v1/credits"),
    ("get", "/v1/credits/ledger"),
    ("post", "/v1/keys"),
    ("get", "/v1/keys"),
    ("post", "/v1/keys/{key_id}/rotate"),
    ("post", "/v1/keys/{key_id}/revoke"),
    ("delete", "/v1/keys/{key_id}"),
    ("get", "/v1/files/{key}"),
    ("post", "/v1/admin/accounts"),
    ("get", "/v1/admin/accounts"),
    ("post", "/v1/admin/accounts/{account_id}/credits"),
    ("patch", "/v1/admin/accounts/{account_id}"),
    ("put", "/v1/admin/plans/{name}"),
    ("get", "/v1/admin/plans"),
    ("post", "/v1/tasks/{task_id}/cancel"),
    ("get", "/v1/tasks/{task_id}/events"),
    ("get", "/v1/usage"),
    ("post", "/v1/uploads"),
    ("post", "/v1/webhooks"),
    ("get", "/v1/webhooks"),
    ("get", "/v1/webhooks/{webhook_id}/deliveries"),
}
ENVELOPE = {"$ref": "#/components/schemas/ErrorResponse"}


async def test_every_route_is_documented_with_the_error_envelope(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    operations = {
        (method, path): operation
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    }
    assert set(operations) >= EXPECTED
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for (method, path), operation in operations.items():
        if path in ("/healthz", "/v1/models"):  # no input, no auth: nothing to refuse
            continue
        assert operation.get("summary") and operation.get("description"), (method, path)
        errors = {s: r for s, r in operation["responses"].items() if s[0] in "45"}
        assert errors, f"{method} {path} documents no error response"
        if any(tag.startswith("compat:") for tag in operation.get("tags", [])):
            continue  # other vendors' dialects answer in their own envelopes
        for status, response in errors.items():
            schema = response["content"]["application/json"]["schema"]
            assert schema == ENVELOPE, (method, path, status)
    video = operations[("post", "/v1/async/videos/generations")]
    assert set(video["responses"]) >= {"202", "400", "401", "402", "403", "422"}
    body = video["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/VideoGenerationRequest"}
    fields = spec["components"]["schemas"]["VideoGenerationRequest"]["properties"]
    assert {"model", "prompt", "duration", "size", "input_image", "seed"} <= set(fields)


async def test_unknown_route_uses_the_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nope")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"
    assert response.json()["error"]["request_id"] == response.headers["x-request-id"]


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    ]


async def test_every_post_documents_the_idempotency_key_headers_it_reads(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path, method, operation in _operations(spec):
        headers = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}
        expected = set()
        if method == "post" and not path.startswith(SKIPPED_PATHS):
            expected.add("Idempotency-Key")
            if path.startswith("/openapi/v2/"):
                expected.add("Ai-trace-id")  # PixVerse's clients send their key there
        assert expected == set(headers) & {"Idempotency-Key", "Ai-trace-id"}, (method, path)
        assert not any(headers[name]["required"] for name in expected)
    # ...and those are the headers the idempotency middleware reads.
    middleware = next(m for m in app.user_middleware if m.cls is IdempotencyMiddleware)
    assert {HEADER, *middleware.kwargs["header_aliases"]} == {b"idempotency-key", b"ai-trace-id"}


# What the middlewares and the key dependency answer around every route, and where.
SHARED_ERRORS: list[tuple[str, FramegateError]] = [
    ("anywhere", InvalidValue("NUL in a query parameter.", code="invalid_text")),
    ("authenticated", Unauthorized("Wrong key.", code="invalid_api_key")),
    ("authenticated", RateLimited("Slow down.", code="client_rate_limit_exceeded")),
    ("key", Forbidden("No scope.")),
    ("key", RateLimited("Slow down.", headers={"Retry-After": "3"})),
    ("body", BadRequest("No body.", code="missing_body")),
    ("body", BadRequest("Not JSON.", code="invalid_json")),
    ("body", PayloadTooLarge("Too large.", code="request_too_large")),
    ("post", BadRequest("Bad key.", code="invalid_idempotency_key")),
    ("post", Conflict("Running.", code="idempotency_request_in_progress")),
    ("post", InvalidValue("Reused.", code="idempotency_key_reused")),
]


def _answer(path: str, method: str, error: FramegateError) -> tuple[int, Any]:
    """``error`` as the middlewares answer it at ``path`` (a dialect's envelope on its
    paths)."""
    scope = {"type": "http", "method": method.upper(), "path": path, "headers": []}
    response = error_response(scope, error)
    return response.status_code, json.loads(bytes(response.body))


async def test_errors_answered_around_the_routes_are_documented(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path, method, operation in _operations(spec):
        applies = {
            "anywhere": True,
            "authenticated": path != "/healthz",
            "key": bool(operation.get("security")),
            "body": "requestBody" in operation,
            "post": method == "post" and not path.startswith(SKIPPED_PATHS),
        }
        responses = operation["responses"]
        for where, error in SHARED_ERRORS:
            if not applies[where]:
                continue
            status, body = _answer(path, method, error)
            documented = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX")
            assert documented is not None, (method, path, error.code, status)
            schema = documented["content"]["application/json"]["schema"]
            validator = jsonschema_rs.validator_for({**schema, "components": spec["components"]})
            assert validator.is_valid(body), (method, path, error.code, status, body)
            if status == 429:
                assert "Retry-After" in responses["429"]["headers"], (method, path)
