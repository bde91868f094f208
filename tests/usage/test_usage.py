"""GET /v1/usage: grouped counts, seconds of video and credits, from the ledger."""

from __future__ import annotations

import httpx

from framegate.runtime import Runtime
from tests.conftest import Tenant, make_account, wait_for_task


async def submit(client: httpx.AsyncClient, account: Tenant, **fields: object) -> dict:
    body = {"model": "preview", "prompt": "x", "duration": 1, "size": "64x64", **fields}
    created = await client.post("/v1/async/videos/generations", json=body, headers=account.headers)
    assert created.status_code == 202, created.text
    return await wait_for_task(client, account, created.json()["id"])


async def test_usage_groups_by_model_key_day_and_tag(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    account = await make_account(runtime)
    await submit(client, account, duration=2, metadata={"feature": "reels"})
    await submit(client, account, duration=3, metadata={"feature": "ads"})
    await submit(client, account, duration=1)
    failed = await submit(client, account, model="test-failing", duration=2)
    assert failed["status"] == "failed"

    by_model = (await client.get("/v1/usage?group_by=model", headers=account.headers)).json()
    assert by_model["total"] == {
        "group": "total",
        "tasks": 3,
        "video_seconds": 6.0,
        "images": 0,
        "credits": 6,
    }
    assert [row["group"] for row in by_model["data"]] == ["preview"]  # failures cost nothing

    by_tag = (
        await client.get("/v1/usage?group_by=metadata.feature", headers=account.headers)
    ).json()
    assert {row["group"]: row["credits"] for row in by_tag["data"]} == {
        "(none)": 1,
        "ads": 3,
        "reels": 2,
    }
    by_key = (await client.get("/v1/usage?group_by=key", headers=account.headers)).json()
    assert [row["group"] for row in by_key["data"]] == [account.key_id]
    by_day = (await client.get("/v1/usage", headers=account.headers)).json()
    assert len(by_day["data"]) == 1 and by_day["data"][0]["tasks"] == 3

    ledger = (await client.get("/v1/credits/ledger?limit=100", headers=account.headers)).json()
    spent = sum(e["credits"] for e in ledger["data"] if e["kind"] == "capture")
    assert spent == by_model["total"]["credits"]

    empty = await client.get("/v1/usage?from=2020-01-01&to=2020-02-01", headers=account.headers)
    assert empty.json()["data"] == [] and empty.json()["total"]["tasks"] == 0


async def test_usage_refuses_bad_groups(client: httpx.AsyncClient, account: Tenant) -> None:
    response = await client.get("/v1/usage?group_by=colour", headers=account.headers)
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "group_by"
