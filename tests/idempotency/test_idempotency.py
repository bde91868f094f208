"""Idempotency-Key: one task and one hold for any number of identical POSTs."""

from __future__ import annotations

import asyncio
import secrets

import httpx

from tests.conftest import Tenant

CLIP = {"model": "preview", "prompt": "same", "duration": 1, "size": "64x64"}


async def ledger(client: httpx.AsyncClient, account: Tenant) -> list[dict]:
    return (await client.get("/v1/credits/ledger?limit=100", headers=account.headers)).json()[
        "data"
    ]


async def holds(client: httpx.AsyncClient, account: Tenant) -> list[dict]:
    return [e for e in await ledger(client, account) if e["kind"] in ("grant", "hold")]


async def test_fifty_concurrent_retries_make_one_task(
    client: httpx.AsyncClient, account: Tenant
) -> None:
    headers = {**account.headers, "Idempotency-Key": secrets.token_hex(8)}

    async def submit() -> httpx.Response:
        return await client.post("/v1/async/videos/generations", json=CLIP, headers=headers)

    responses = await asyncio.gather(*(submit() for _ in range(50)))
    accepted = [r for r in responses if r.status_code == 202]
    conflicts = [r for r in responses if r.status_code == 409]
    assert len(accepted) + len(conflicts) == 50, [r.status_code for r in responses]
    assert accepted, "at least the first request runs"
    assert len({r.content for r in accepted}) == 1  # replays are byte-identical
    for conflict in conflicts:
        assert conflict.json()["error"]["code"] == "idempotency_request_in_progress"
        assert conflict.headers["retry-after"] == "1"
    task_id = accepted[0].json()["id"]
    tasks = (await client.get("/v1/tasks", headers=account.headers)).json()["data"]
    assert [t["id"] for t in tasks] == [task_id]
    holds = [e for e in await ledger(client, account) if e["kind"] == "hold"]
    assert len(holds) == 1

    replay = await submit()
    assert replay.status_code == 202
    assert replay.content == accepted[0].content
    assert replay.headers["idempotent-replayed"] == "true"


async def test_same_key_other_body_is_422_and_changes_nothing(
    client: httpx.AsyncClient, account: Tenant
) -> None:
    headers = {**account.headers, "Idempotency-Key": secrets.token_hex(8)}
    first = await client.post("/v1/async/videos/generations", json=CLIP, headers=headers)
    assert first.status_code == 202
    before = await holds(client, account)
    other = await client.post(
        "/v1/async/videos/generations", json={**CLIP, "prompt": "different"}, headers=headers
    )
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    # No new hold (the first task may have completed meanwhile: its capture is fine).
    assert await holds(client, account) == before


async def test_keys_are_per_account(client: httpx.AsyncClient, account: Tenant, runtime) -> None:
    from tests.conftest import make_account

    other = await make_account(runtime)
    key = secrets.token_hex(8)
    mine = await client.post(
        "/v1/async/videos/generations",
        json=CLIP,
        headers={**account.headers, "Idempotency-Key": key},
    )
    theirs = await client.post(
        "/v1/async/videos/generations", json=CLIP, headers={**other.headers, "Idempotency-Key": key}
    )
    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["id"] != theirs.json()["id"]


async def test_refusals_that_invite_a_retry_are_not_stored(
    client: httpx.AsyncClient, runtime
) -> None:
    from tests.conftest import make_account

    poor = await make_account(runtime, credits=0)
    headers = {**poor.headers, "Idempotency-Key": secrets.token_hex(8)}
    refused = await client.post("/v1/async/videos/generations", json=CLIP, headers=headers)
    assert refused.status_code == 402  # a 4xx verdict on this request: stored and replayed
    again = await client.post("/v1/async/videos/generations", json=CLIP, headers=headers)
    assert again.status_code == 402
    assert again.headers["idempotent-replayed"] == "true"
