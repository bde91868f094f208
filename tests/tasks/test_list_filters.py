"""GET /v1/tasks filters: by creation time (from/to) and by a metadata tag, on both
database backends, with clear 422s for malformed values."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.conftest import Tenant

CLIP = {"model": "preview", "prompt": "a filter test", "duration": 1, "size": "64x64"}


async def submit(client: httpx.AsyncClient, account: Tenant, **metadata: str) -> dict[str, Any]:
    response = await client.post(
        "/v1/async/videos/generations",
        json={**CLIP, "metadata": metadata},
        headers=account.headers,
    )
    assert response.status_code == 202, response.text
    task: dict[str, Any] = response.json()
    return task


async def listed(client: httpx.AsyncClient, account: Tenant, **params: Any) -> list[str]:
    response = await client.get("/v1/tasks", params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    return [task["id"] for task in response.json()["data"]]


async def test_metadata_tag_filter(client: httpx.AsyncClient, account: Tenant) -> None:
    campaign = f"c{secrets.token_hex(4)}"
    spring = [await submit(client, account, campaign=campaign, season="spring") for _ in range(2)]
    autumn = await submit(client, account, campaign=campaign, season="autumn")
    untagged = await submit(client, account)
    ids = await listed(client, account, metadata=f"campaign:{campaign}")
    assert ids == [autumn["id"], spring[1]["id"], spring[0]["id"]]
    assert await listed(client, account, metadata="season:spring") == [
        spring[1]["id"],
        spring[0]["id"],
    ]
    # The value must match exactly; an absent tag matches nothing (not the empty value).
    assert await listed(client, account, metadata="season:Spring") == []
    assert untagged["id"] not in await listed(client, account, metadata="season:")
    # A value may hold colons.
    odd = await submit(client, account, link="https://host.test:8080/a")
    assert await listed(client, account, metadata="link:https://host.test:8080/a") == [odd["id"]]
    # Filters combine, and page like the unfiltered list.
    first = await client.get(
        "/v1/tasks",
        params={"metadata": f"campaign:{campaign}", "limit": 2, "status": "queued"},
        headers=account.headers,
    )
    assert first.status_code == 200


async def test_created_range_filter(client: httpx.AsyncClient, account: Tenant) -> None:
    task = await submit(client, account)
    created = task["created_at"]
    assert task["id"] in await listed(client, account, **{"from": created})
    assert task["id"] not in await listed(client, account, **{"from": created + 1})
    assert task["id"] not in await listed(client, account, to=created)
    assert task["id"] in await listed(client, account, to=created + 1)
    assert task["id"] in await listed(client, account, **{"from": "2020-01-01", "to": created + 5})
    assert await listed(client, account, to="2020-01-01") == []


async def test_malformed_filters_name_the_parameter(
    client: httpx.AsyncClient, account: Tenant
) -> None:
    for params, param in (
        ({"metadata": "no-colon"}, "metadata"),
        ({"metadata": ":value"}, "metadata"),
        ({"metadata": "x" * 601}, "metadata"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-45"}, "to"),
    ):
        response = await client.get("/v1/tasks", params=params, headers=account.headers)
        assert response.status_code == 422, (params, response.text)
        error = response.json()["error"]
        assert error["param"] == param, (params, error)
