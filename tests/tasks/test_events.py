"""GET /v1/tasks/{id}/events: progress rises, exactly one terminal event, resumable."""

from __future__ import annotations

import json

import httpx

from tests.conftest import Tenant


async def read_events(client: httpx.AsyncClient, url: str, headers: dict) -> list[dict]:
    events: list[dict] = []
    current: dict = {}
    async with client.stream("GET", url, headers=headers, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            line = line.rstrip("\r")
            if not line:
                if current:
                    events.append(current)
                current = {}
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            current[field] = value.strip()
    if current:
        events.append(current)
    return events


async def test_stream_shows_progress_and_one_terminal_event(
    client: httpx.AsyncClient, account: Tenant
) -> None:
    created = await client.post(
        "/v1/async/videos/generations",
        json={"model": "preview", "prompt": "x", "duration": 10, "size": "1280x720", "fps": 24},
        headers=account.headers,
    )
    task_id = created.json()["id"]
    events = await read_events(client, f"/v1/tasks/{task_id}/events", account.headers)
    tasks = [json.loads(e["data"]) for e in events]
    progress = [t["progress"] for t in tasks]
    assert progress == sorted(progress), progress
    assert any(0 < p < 100 for p in progress), progress  # it was seen moving
    terminal = [t for t in tasks if t["status"] in ("completed", "failed", "cancelled")]
    assert len(terminal) == 1 and tasks[-1] is terminal[0]
    assert terminal[0]["status"] == "completed"
    assert events[-1]["event"] == "status"
    assert all(e["id"] for e in events)

    # Resuming after the last event: nothing repeated, the stream just ends... with the
    # terminal state not sent again.
    resumed = await read_events(
        client,
        f"/v1/tasks/{task_id}/events",
        {**account.headers, "Last-Event-ID": events[-1]["id"]},
    )
    assert resumed == []


async def test_stream_of_other_accounts_task_is_404(
    client: httpx.AsyncClient, account: Tenant, runtime
) -> None:
    from tests.conftest import make_account

    other = await make_account(runtime)
    created = await client.post(
        "/v1/async/videos/generations",
        json={"model": "preview", "prompt": "x", "duration": 1, "size": "64x64"},
        headers=account.headers,
    )
    response = await client.get(f"/v1/tasks/{created.json()['id']}/events", headers=other.headers)
    assert response.status_code == 404
