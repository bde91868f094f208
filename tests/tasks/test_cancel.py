"""Cancel: a queued task at once, a processing one at its engine's next step; the hold is
released exactly once either way; a finished task answers 409."""

from __future__ import annotations

import httpx

from framegate.runtime import Runtime
from tests.conftest import Tenant, wait_for_task
from tests.engines_for_tests import GatedEngine
from tests.waiting import wait_until

GATED = {"model": "test-gated", "prompt": "wait", "duration": 1, "size": "64x64"}


async def releases(client: httpx.AsyncClient, account: Tenant, task_id: str) -> list[dict]:
    ledger = (await client.get("/v1/credits/ledger?limit=100", headers=account.headers)).json()
    return [e for e in ledger["data"] if e["task_id"] == task_id and e["kind"] == "release"]


async def wait_status(
    client: httpx.AsyncClient, account: Tenant, task_id: str, status: str
) -> None:
    async def reached() -> bool:
        task = (await client.get(f"/v1/tasks/{task_id}", headers=account.headers)).json()
        return bool(task["status"] == status)

    await wait_until(reached, 10, f"{task_id} to reach {status}", interval=0.025)


async def test_cancel_processing_and_queued_release_once(
    client: httpx.AsyncClient, runtime: Runtime, account: Tenant, gate: GatedEngine
) -> None:
    stopped = gate.stopped
    before = (await client.get("/v1/credits", headers=account.headers)).json()["available"]
    running = (
        await client.post("/v1/async/videos/generations", json=GATED, headers=account.headers)
    ).json()
    await wait_status(client, account, running["id"], "processing")

    cancelled = await client.post(f"/v1/tasks/{running['id']}/cancel", headers=account.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["credits_refunded"] == 3
    again = await client.post(f"/v1/tasks/{running['id']}/cancel", headers=account.headers)
    assert again.status_code == 200  # cancelling twice is harmless
    assert len(await releases(client, account, running["id"])) == 1

    # Its worker notices at the next renewal and gives the slot back: the task stays
    # cancelled and no outputs are attached.
    await wait_until(lambda: gate.stopped == stopped + 1, 10, "the worker to stop the job")
    task = (await client.get(f"/v1/tasks/{running['id']}", headers=account.headers)).json()
    assert task["status"] == "cancelled" and task["result"] is None

    credits = (await client.get("/v1/credits", headers=account.headers)).json()
    assert credits["available"] == before and credits["held"] == 0


async def test_cancel_a_queued_task(
    client: httpx.AsyncClient, runtime: Runtime, account: Tenant
) -> None:
    # Occupy both workers so the third task stays queued.
    blockers = [
        (
            await client.post("/v1/async/videos/generations", json=GATED, headers=account.headers)
        ).json()["id"]
        for _ in range(runtime.settings.worker_concurrency)
    ]
    for task_id in blockers:
        await wait_status(client, account, task_id, "processing")
    queued = (
        await client.post("/v1/async/videos/generations", json=GATED, headers=account.headers)
    ).json()
    assert queued["status"] == "queued"
    response = await client.post(f"/v1/tasks/{queued['id']}/cancel", headers=account.headers)
    assert response.json()["status"] == "cancelled"
    assert len(await releases(client, account, queued["id"])) == 1
    for task_id in blockers:
        await client.post(f"/v1/tasks/{task_id}/cancel", headers=account.headers)
    credits = (await client.get("/v1/credits", headers=account.headers)).json()
    assert credits["held"] == 0 and credits["available"] == 1000


async def test_cancel_a_completed_task_is_409(client: httpx.AsyncClient, account: Tenant) -> None:
    created = await client.post(
        "/v1/async/videos/generations",
        json={"model": "preview", "prompt": "x", "duration": 1, "size": "64x64"},
        headers=account.headers,
    )
    task = await wait_for_task(client, account, created.json()["id"])
    response = await client.post(f"/v1/tasks/{task['id']}/cancel", headers=account.headers)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "task_not_cancellable"
    assert await releases(client, account, task["id"]) == []
