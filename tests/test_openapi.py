"""/openapi.json documents every route, its body and its error responses."""

from __future__ import annotations

import httpx

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
