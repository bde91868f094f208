"""Limits: concurrent tasks per account, requests per key, spend per key."""

from __future__ import annotations

import asyncio
import secrets

import httpx

from framegate.runtime import Runtime
from tests.conftest import make_account

GATED = {"model": "test-gated", "prompt": "wait", "duration": 1, "size": "64x64"}


async def account_on_plan(
    client: httpx.AsyncClient, runtime: Runtime, *, videos: int = 5, rpm: int = 100_000
):
    admin = await make_account(runtime, scopes=["admin"])
    plan = f"plan-{secrets.token_hex(4)}"
    body = {"max_concurrent_videos": videos, "max_concurrent_images": 5, "requests_per_minute": rpm}
    assert (
        await client.put(f"/v1/admin/plans/{plan}", json=body, headers=admin.headers)
    ).status_code == 200
    tenant = await make_account(runtime, credits=1000)
    patched = await client.patch(
        f"/v1/admin/accounts/{tenant.id}", json={"plan": plan}, headers=admin.headers
    )
    assert patched.status_code == 200, patched.text
    return tenant


async def test_sixth_concurrent_video_task_is_429(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    tenant = await account_on_plan(client, runtime, videos=5)

    async def submit() -> httpx.Response:
        return await client.post("/v1/async/videos/generations", json=GATED, headers=tenant.headers)

    responses = await asyncio.gather(*(submit() for _ in range(6)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [202] * 5 + [429], statuses
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["code"] == "concurrency_limit_exceeded"
    assert int(refused.headers["retry-after"]) >= 1
    credits = (await client.get("/v1/credits", headers=tenant.headers)).json()
    assert credits["held"] == 5 * 3  # the refused one held nothing
    for response in responses:
        if response.status_code == 202:
            task_id = response.json()["id"]
            await client.post(f"/v1/tasks/{task_id}/cancel", headers=tenant.headers)
    assert (
        await client.post("/v1/async/videos/generations", json=GATED, headers=tenant.headers)
    ).status_code == 202  # slots free again once tasks end
    listed = (await client.get("/v1/tasks?status=queued", headers=tenant.headers)).json()
    for task in listed["data"]:
        await client.post(f"/v1/tasks/{task['id']}/cancel", headers=tenant.headers)


async def test_key_over_its_rate_is_429_with_headers(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    tenant = await account_on_plan(client, runtime, rpm=5)
    statuses = [
        (await client.get("/v1/tasks", headers=tenant.headers)).status_code for _ in range(6)
    ]
    assert statuses == [200] * 5 + [429]
    response = await client.get("/v1/tasks", headers=tenant.headers)
    assert response.status_code == 429
    assert response.json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.headers["ratelimit-limit"] == "5"
    assert response.headers["ratelimit-remaining"] == "0"


async def test_capped_key_is_402(client: httpx.AsyncClient, runtime: Runtime) -> None:
    tenant = await make_account(runtime, credits=1000)
    capped = await client.post(
        "/v1/keys", json={"name": "capped", "spend_cap": 4}, headers=tenant.headers
    )
    headers = {"Authorization": f"Bearer {capped.json()['secret']}"}
    clip = {"model": "preview", "prompt": "x", "duration": 3, "size": "64x64"}
    first = await client.post("/v1/async/videos/generations", json=clip, headers=headers)
    assert first.status_code == 202
    second = await client.post("/v1/async/videos/generations", json=clip, headers=headers)
    assert second.status_code == 402
    assert second.json()["error"]["code"] == "key_budget_exceeded"
    # The account itself still has credits: another key may spend them.
    other = await client.post("/v1/async/videos/generations", json=clip, headers=tenant.headers)
    assert other.status_code == 202
