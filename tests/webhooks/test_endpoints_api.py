"""/v1/webhooks: registering endpoints, secrets shown once, SSRF refusals, tenancy, scopes."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest

from framegate.kit.ids import new_id
from framegate.kit.time import utcnow
from framegate.models import WebhookDelivery
from framegate.runtime import Runtime
from tests.conftest import Tenant, make_account
from tests.webhooks.conftest import Receiver, create_endpoint


def secret_bytes(secret: str) -> bytes:
    assert secret.startswith("whsec_"), secret
    return base64.b64decode(secret.removeprefix("whsec_"), validate=True)


async def test_secret_is_shown_only_on_create_and_rotate(
    client: httpx.AsyncClient, account: Tenant, receiver: Receiver
) -> None:
    created = await create_endpoint(client, account, receiver.url, description="orders")
    assert created["id"].startswith("we_")
    assert created["enabled"] is True
    assert created["events"] == ["task.completed", "task.failed", "task.cancelled"]
    assert len(secret_bytes(created["secret"])) >= 24
    path = f"/v1/webhooks/{created['id']}"

    shown = await client.get(path, headers=account.headers)
    listed = await client.get("/v1/webhooks", headers=account.headers)
    patched = await client.patch(path, json={"description": "x"}, headers=account.headers)
    for response in (shown, patched):
        assert response.status_code == 200, response.text
        assert "secret" not in response.json()
    assert [e["id"] for e in listed.json()["data"]] == [created["id"]]
    assert "secret" not in listed.json()["data"][0]

    rotated = await client.post(f"{path}/rotate-secret", headers=account.headers)
    assert rotated.status_code == 200, rotated.text
    assert len(secret_bytes(rotated.json()["secret"])) >= 24
    assert rotated.json()["secret"] != created["secret"]
    assert "secret" not in (await client.get(path, headers=account.headers)).json()


async def test_update_and_delete(
    client: httpx.AsyncClient,
    account: Tenant,
    receiver: Receiver,
    make_receiver: Callable[[], Receiver],
) -> None:
    created = await create_endpoint(client, account, receiver.url)
    path = f"/v1/webhooks/{created['id']}"
    other_url = make_receiver().url
    response = await client.patch(
        path,
        json={"url": other_url, "events": ["task.progress", "task.completed"], "enabled": False},
        headers=account.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["url"] == other_url
    assert body["events"] == ["task.completed", "task.progress"]
    assert body["enabled"] is False and body["disabled_reason"]
    assert body["updated_at"] is not None

    enabled = await client.patch(path, json={"enabled": True}, headers=account.headers)
    assert enabled.json()["enabled"] is True and enabled.json()["disabled_reason"] is None

    deleted = await client.delete(path, headers=account.headers)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"id": created["id"], "object": "webhook_endpoint", "deleted": True}
    assert (await client.get(path, headers=account.headers)).status_code == 404
    assert (await client.get("/v1/webhooks", headers=account.headers)).json()["data"] == []


@pytest.mark.parametrize(
    "events", [["task.done"], ["task.completed", "video.ready"], []], ids=["unknown", "mix", "none"]
)
async def test_events_must_be_known(
    client: httpx.AsyncClient, account: Tenant, receiver: Receiver, events: list[str]
) -> None:
    body = {"url": receiver.url, "events": events}
    response = await client.post("/v1/webhooks", json=body, headers=account.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == "events"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://127.0.0.2/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://2130706433/hook",
        "file:///etc/passwd",
    ],
)
async def test_unsafe_urls_are_refused(
    client: httpx.AsyncClient, account: Tenant, receiver: Receiver, url: str
) -> None:
    response = await client.post("/v1/webhooks", json={"url": url}, headers=account.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == "url"

    created = await create_endpoint(client, account, receiver.url)
    patched = await client.patch(
        f"/v1/webhooks/{created['id']}", json={"url": url}, headers=account.headers
    )
    assert patched.status_code == 422, patched.text
    assert patched.json()["error"]["param"] == "url"


async def test_another_accounts_endpoint_is_not_found(
    client: httpx.AsyncClient, runtime: Runtime, account: Tenant, receiver: Receiver
) -> None:
    created = await create_endpoint(client, account, receiver.url)
    stranger = await make_account(runtime)
    path = f"/v1/webhooks/{created['id']}"
    attempts = [
        client.get(path, headers=stranger.headers),
        client.patch(path, json={"enabled": False}, headers=stranger.headers),
        client.post(f"{path}/rotate-secret", headers=stranger.headers),
        client.post(f"{path}/test", headers=stranger.headers),
        client.get(f"{path}/deliveries", headers=stranger.headers),
        client.delete(path, headers=stranger.headers),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 404, response.text
        assert response.json()["error"]["type"] == "not_found_error"
    assert (await client.get("/v1/webhooks", headers=stranger.headers)).json()["data"] == []
    still = await client.get(path, headers=account.headers)
    assert still.status_code == 200 and still.json()["enabled"] is True


async def test_routes_need_the_keys_manage_scope(
    client: httpx.AsyncClient, runtime: Runtime, receiver: Receiver
) -> None:
    reader = await make_account(runtime, scopes=["tasks:read", "videos:write"])
    for response in (
        await client.get("/v1/webhooks", headers=reader.headers),
        await client.post("/v1/webhooks", json={"url": receiver.url}, headers=reader.headers),
        await client.get("/v1/webhooks/task-secret", headers=reader.headers),
        await client.post("/v1/webhooks/task-secret/rotate", headers=reader.headers),
    ):
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "insufficient_scope"


async def test_task_secret_is_stable_until_rotated(
    client: httpx.AsyncClient, account: Tenant
) -> None:
    first = await client.get("/v1/webhooks/task-secret", headers=account.headers)
    assert first.status_code == 200, first.text
    secret = first.json()["secret"]
    assert len(secret_bytes(secret)) >= 24
    again = await client.get("/v1/webhooks/task-secret", headers=account.headers)
    assert again.json()["secret"] == secret

    rotated = await client.post("/v1/webhooks/task-secret/rotate", headers=account.headers)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"] != secret
    after = await client.get("/v1/webhooks/task-secret", headers=account.headers)
    assert after.json()["secret"] == rotated.json()["secret"]


async def test_deliveries_are_paginated_newest_first(
    client: httpx.AsyncClient, runtime: Runtime, account: Tenant, receiver: Receiver
) -> None:
    endpoint = await create_endpoint(client, account, receiver.url)
    ids = [new_id("msg") for _ in range(3)]
    async with runtime.sessionmaker() as session:
        for index, delivery_id in enumerate(ids):
            session.add(
                WebhookDelivery(
                    id=delivery_id,
                    account_id=account.id,
                    endpoint_id=endpoint["id"],
                    url=receiver.url,
                    task_id=None,
                    event_type="task.completed",
                    payload={"type": "task.completed", "data": {}},
                    status="failed",
                    attempts=index + 1,
                    last_status_code=500,
                    last_error="HTTP 500",
                    created_at=utcnow() + timedelta(milliseconds=index),
                )
            )
        await session.commit()
    path = f"/v1/webhooks/{endpoint['id']}/deliveries"
    first = (await client.get(path, params={"limit": 2}, headers=account.headers)).json()
    assert [d["id"] for d in first["data"]] == sorted(ids, reverse=True)[:2]
    assert first["has_more"] is True and first["next_cursor"] == first["data"][-1]["id"]
    row = first["data"][0]
    assert row["object"] == "webhook_delivery" and row["endpoint_id"] == endpoint["id"]
    assert (row["event_type"], row["status"], row["last_status_code"]) == (
        "task.completed",
        "failed",
        500,
    )
    assert row["last_error"] == "HTTP 500" and row["created_at"] > 0
    params = {"limit": 2, "after": first["next_cursor"]}
    second = (await client.get(path, params=params, headers=account.headers)).json()
    assert [d["id"] for d in second["data"]] == sorted(ids, reverse=True)[2:]
    assert second["has_more"] is False and second["next_cursor"] is None


async def test_endpoints_per_account_are_capped(
    client: httpx.AsyncClient, runtime: Runtime, account: Tenant, receiver: Receiver
) -> None:
    limit = runtime.settings.webhook_max_endpoints
    created = [await create_endpoint(client, account, receiver.url) for _ in range(limit)]
    # Disabled endpoints still count.
    first = f"/v1/webhooks/{created[0]['id']}"
    await client.patch(first, json={"enabled": False}, headers=account.headers)

    response = await client.post(
        "/v1/webhooks", json={"url": receiver.url}, headers=account.headers
    )
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("conflict_error", "webhook_endpoint_limit_reached")
    assert str(limit) in error["message"] and "FRAMEGATE_WEBHOOK_MAX_ENDPOINTS" in error["message"]
    assert "DELETE /v1/webhooks/" in error["message"]
    listed = await client.get("/v1/webhooks", headers=account.headers)
    assert len(listed.json()["data"]) == limit
    # Another account has its own allowance.
    other = await make_account(runtime)
    await create_endpoint(client, other, receiver.url)

    assert (await client.delete(first, headers=account.headers)).status_code == 200
    await create_endpoint(client, account, receiver.url)
