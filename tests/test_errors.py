"""The error envelope at the edges: empty and oversized bodies, out-of-range numbers."""

from __future__ import annotations

import httpx

from framegate.runtime import Runtime
from tests.conftest import Tenant, make_account


async def test_empty_body_names_the_problem(client: httpx.AsyncClient, account: Tenant) -> None:
    response = await client.post("/v1/async/videos/generations", headers=account.headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "missing_body"


async def test_oversized_body_is_413_before_it_is_read(
    client: httpx.AsyncClient, runtime: Runtime, account: Tenant
) -> None:
    limit = runtime.settings.max_request_bytes
    declared = await client.post(
        "/v1/async/videos/generations",
        content=b"{" + b" " * (limit + 10) + b"}",
        headers={**account.headers, "Content-Type": "application/json"},
    )
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "request_too_large"
    assert declared.headers["x-request-id"] == declared.json()["error"]["request_id"]

    async def chunks():  # no Content-Length: counted while it streams
        for _ in range(limit // (1 << 20) + 2):
            yield b" " * (1 << 20)

    streamed = await client.post(
        "/v1/async/videos/generations",
        content=chunks(),
        headers={**account.headers, "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413


async def test_huge_numbers_are_422_not_500(client: httpx.AsyncClient, runtime: Runtime) -> None:
    admin = await make_account(runtime, scopes=["admin"])
    response = await client.post(
        "/v1/admin/accounts", json={"name": "x", "credits": 10**20}, headers=admin.headers
    )
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "credits"


async def test_estimate_refuses_other_dialects_fields(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/estimates", json={"model": "preview", "seconds": 5})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "seconds"
    assert "duration" in response.json()["error"]["message"]
