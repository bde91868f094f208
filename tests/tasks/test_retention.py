"""Retention: after the sweeper, the output file is gone and its URL answers 410;
the deadline reaper fails an overdue task with `timeout` and a full refund."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import update

from framegate.kit.time import utcnow
from framegate.models import Task
from framegate.runtime import Runtime
from tests.conftest import Tenant, file_path, wait_for_task


async def test_sweeper_deletes_expired_outputs_and_urls_answer_410(
    client: httpx.AsyncClient, runtime: Runtime, account: Tenant
) -> None:
    created = await client.post(
        "/v1/async/videos/generations",
        json={"model": "preview", "prompt": "x", "duration": 1, "size": "64x64"},
        headers=account.headers,
    )
    task = await wait_for_task(client, account, created.json()["id"])
    assert task["expires_at"] - task["completed_at"] == 7 * 86400
    url = file_path(task["result"]["data"][0]["url"])
    key = httpx.URL(task["result"]["data"][0]["url"]).path.removeprefix("/v1/files/")
    assert (await client.get(url)).status_code == 200
    path = runtime.storage.local_path(key)
    assert path is not None and path.is_file()

    async with runtime.sessionmaker() as session:  # as if seven days had passed
        await session.execute(
            update(Task).where(Task.id == task["id"]).values(expires_at=utcnow() - timedelta(1))
        )
        await session.commit()
    assert runtime.sweeper is not None
    assert await runtime.sweeper.run_once() >= 1

    assert not path.exists()
    gone = await client.get(url)
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "output_expired"
    after = (await client.get(f"/v1/tasks/{task['id']}", headers=account.headers)).json()
    assert after["status"] == "completed" and after["result"] is None


async def test_overdue_task_fails_with_timeout_and_refund(
    client: httpx.AsyncClient, runtime: Runtime, account: Tenant
) -> None:
    created = await client.post(
        "/v1/async/videos/generations",
        json={"model": "test-gated", "prompt": "never", "duration": 1, "size": "64x64"},
        headers=account.headers,
    )
    task_id = created.json()["id"]
    async with runtime.sessionmaker() as session:
        await session.execute(
            update(Task).where(Task.id == task_id).values(deadline_at=utcnow() - timedelta(1))
        )
        await session.commit()
    task = await wait_for_task(client, account, task_id, timeout=30)
    assert task["status"] == "failed"
    assert task["error"]["code"] == "timeout"
    assert task["credits_refunded"] == 3
    credits = (await client.get("/v1/credits", headers=account.headers)).json()
    assert credits == {**credits, "available": 1000, "held": 0}


async def test_sweeper_deletes_expired_uploads(
    client: httpx.AsyncClient, runtime: Runtime, account: Tenant
) -> None:
    import io

    from PIL import Image

    from framegate.models import Upload

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 200, 30)).save(buffer, format="PNG")
    uploaded = await client.post(
        "/v1/uploads",
        files={"file": ("a.png", buffer.getvalue(), "image/png")},
        headers=account.headers,
    )
    assert uploaded.status_code == 201, uploaded.text
    upload_id = uploaded.json()["id"]
    key = httpx.URL(uploaded.json()["url"]).path.removeprefix("/v1/files/")
    path = runtime.storage.local_path(key)
    assert path is not None and path.is_file()

    async with runtime.sessionmaker() as session:
        await session.execute(
            update(Upload).where(Upload.id == upload_id).values(expires_at=utcnow() - timedelta(1))
        )
        await session.commit()
    assert runtime.sweeper is not None
    await runtime.sweeper.run_once()
    assert not path.exists()
    refused = await client.post(
        "/v1/async/videos/generations",
        json={
            "model": "preview",
            "prompt": "x",
            "duration": 1,
            "size": "64x64",
            "input_image": upload_id,
        },
        headers=account.headers,
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["param"] == "input_image"
