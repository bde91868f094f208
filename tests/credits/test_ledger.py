"""Credits: hold on submit, capture on success, release on failure; never overspent."""

from __future__ import annotations

import asyncio

import httpx

from framegate.runtime import Runtime
from tests.conftest import Tenant, make_account, wait_for_task

CLIP = {"model": "preview", "prompt": "race", "duration": 1, "size": "64x64", "fps": 8}
CLIP_PRICE = 1  # 1 s at 480p


async def ledger(client: httpx.AsyncClient, account: Tenant) -> list[dict]:
    entries: list[dict] = []
    after = None
    while True:
        url = "/v1/credits/ledger?limit=100" + (f"&after={after}" if after else "")
        page = (await client.get(url, headers=account.headers)).json()
        entries.extend(page["data"])
        if not page["has_more"]:
            return entries
        after = page["next_cursor"]


async def balance(client: httpx.AsyncClient, account: Tenant) -> dict:
    response = await client.get("/v1/credits", headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_fifty_concurrent_submissions_never_overspend(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    account = await make_account(runtime, credits=7 * CLIP_PRICE)

    async def submit() -> httpx.Response:
        return await client.post("/v1/async/videos/generations", json=CLIP, headers=account.headers)

    responses = await asyncio.gather(*(submit() for _ in range(50)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(202) == 7, statuses
    assert statuses.count(402) == 43, statuses
    refused = next(r for r in responses if r.status_code == 402).json()["error"]
    assert refused["code"] == "insufficient_credits"
    assert refused["type"] == "billing_error"

    for response in responses:
        if response.status_code == 202:
            await wait_for_task(client, account, response.json()["id"])
    after = await balance(client, account)
    assert after == {
        "object": "credit_balance",
        "account_id": account.id,
        "available": 0,
        "held": 0,
    }
    entries = await ledger(client, account)
    assert sum(e["amount"] for e in entries) == after["available"]  # grant 7, 7 holds of -1
    kinds = sorted(e["kind"] for e in entries)
    assert kinds.count("hold") == 7 and kinds.count("capture") == 7 and kinds.count("grant") == 1
    assert sum(e["credits"] for e in entries if e["kind"] == "capture") == 7


async def test_engine_failure_refunds_the_whole_hold(
    client: httpx.AsyncClient, account: Tenant
) -> None:
    before = await balance(client, account)
    response = await client.post(
        "/v1/async/videos/generations",
        json={"model": "test-failing", "prompt": "x", "duration": 3, "size": "64x64"},
        headers=account.headers,
    )
    assert response.status_code == 202, response.text
    held = await balance(client, account)
    assert held["available"] == before["available"] - 3
    assert held["held"] == 3

    task = await wait_for_task(client, account, response.json()["id"])
    assert task["status"] == "failed"
    assert task["error"] == {"code": "engine_error", "message": "the model crashed"}
    assert task["credits_used"] == 0
    assert task["credits_refunded"] == 3
    assert await balance(client, account) == before
    kinds = [e["kind"] for e in await ledger(client, account) if e["task_id"] == task["id"]]
    assert sorted(kinds) == ["hold", "release"]


async def test_insufficient_credits_names_the_price(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    account = await make_account(runtime, credits=1)
    response = await client.post(
        "/v1/async/videos/generations",
        json={"model": "preview", "prompt": "x", "duration": 5, "size": "1280x720"},
        headers=account.headers,
    )
    assert response.status_code == 402
    assert "costs 10 credits" in response.json()["error"]["message"]
    assert (await balance(client, account))["available"] == 1
    assert (await client.get("/v1/tasks", headers=account.headers)).json()["data"] == []
