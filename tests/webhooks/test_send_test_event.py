"""POST /v1/webhooks/{id}/test: one signed webhook.test event, sent now, its outcome answered."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from standardwebhooks import Webhook

from framegate.kit.ids import new_id
from framegate.kit.time import utcnow
from framegate.models import WebhookDelivery
from framegate.runtime import Runtime
from tests.conftest import Tenant, make_account
from tests.webhooks.conftest import Receiver, create_endpoint, deliveries, settled_delivery


async def send_test(client: httpx.AsyncClient, tenant: Tenant, endpoint_id: str) -> dict[str, Any]:
    response = await client.post(f"/v1/webhooks/{endpoint_id}/test", headers=tenant.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_delivers_a_signed_test_event_and_reports_success(
    client: httpx.AsyncClient, account: Tenant, receiver: Receiver
) -> None:
    endpoint = await create_endpoint(client, account, receiver.url, events=["task.failed"])
    result = await send_test(client, account, endpoint["id"])
    # Answered once the receiver has: the request is already there.
    (request,) = receiver.requests
    event = Webhook(endpoint["secret"]).verify(request.body, request.headers)
    assert event["type"] == "webhook.test"
    assert event["data"] == {"object": "webhook_endpoint", "id": endpoint["id"]}
    assert request.path == "/hook"

    assert result["object"] == "webhook_test"
    assert (result["succeeded"], result["status_code"], result["error"]) == (True, 200, None)
    delivery = result["delivery"]
    assert delivery["id"] == request.headers["webhook-id"]
    assert delivery["endpoint_id"] == endpoint["id"] and delivery["task_id"] is None
    assert (delivery["event_type"], delivery["status"], delivery["attempts"]) == (
        "webhook.test",
        "succeeded",
        1,
    )
    assert delivery["delivered_at"] is not None and delivery["next_attempt_at"] is None
    # It is in the endpoint's delivery history, as answered.
    assert await deliveries(client, account, endpoint["id"]) == [delivery]


async def test_reports_a_receiver_error_and_does_not_retry(
    client: httpx.AsyncClient, account: Tenant, receiver: Receiver
) -> None:
    receiver.respond(500, 500)
    endpoint = await create_endpoint(client, account, receiver.url)
    result = await send_test(client, account, endpoint["id"])
    assert (result["succeeded"], result["status_code"], result["error"]) == (
        False,
        500,
        "HTTP 500",
    )
    delivery = result["delivery"]
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "failed",
        1,
        500,
    )
    assert delivery["last_error"] == "HTTP 500" and delivery["delivered_at"] is None
    # Retries of task events come 0.2 s apart in the tests; a test event gets none.
    await asyncio.sleep(0.6)
    assert len(receiver.requests) == 1
    assert await deliveries(client, account, endpoint["id"]) == [delivery]
    shown = await client.get(f"/v1/webhooks/{endpoint['id']}", headers=account.headers)
    assert shown.json()["enabled"] is True


async def test_gone_is_reported_without_disabling_the_endpoint(
    client: httpx.AsyncClient, account: Tenant, receiver: Receiver
) -> None:
    receiver.respond(410)
    endpoint = await create_endpoint(client, account, receiver.url)
    result = await send_test(client, account, endpoint["id"])
    assert (result["succeeded"], result["status_code"]) == (False, 410)
    shown = await client.get(f"/v1/webhooks/{endpoint['id']}", headers=account.headers)
    assert shown.json()["enabled"] is True


async def test_an_unreachable_receiver_is_a_failed_test_not_an_error(
    client: httpx.AsyncClient, account: Tenant, make_receiver: Callable[[], Receiver]
) -> None:
    closed = make_receiver()
    endpoint = await create_endpoint(client, account, closed.url)
    closed.close()
    result = await send_test(client, account, endpoint["id"])
    assert (result["succeeded"], result["status_code"]) == (False, None)
    assert result["error"] == "Could not connect."
    assert result["delivery"]["status"] == "failed"


async def test_a_disabled_endpoint_can_be_tested(
    client: httpx.AsyncClient, account: Tenant, receiver: Receiver
) -> None:
    endpoint = await create_endpoint(client, account, receiver.url)
    path = f"/v1/webhooks/{endpoint['id']}"
    await client.patch(path, json={"enabled": False}, headers=account.headers)
    assert (await send_test(client, account, endpoint["id"]))["succeeded"] is True
    assert len(receiver.requests) == 1
    assert (await client.get(path, headers=account.headers)).json()["enabled"] is False


async def test_another_account_or_a_missing_scope_sends_nothing(
    client: httpx.AsyncClient, runtime: Runtime, account: Tenant, receiver: Receiver
) -> None:
    endpoint = await create_endpoint(client, account, receiver.url)
    path = f"/v1/webhooks/{endpoint['id']}/test"
    stranger = await make_account(runtime)
    response = await client.post(path, headers=stranger.headers)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["type"] == "not_found_error"
    missing = await client.post("/v1/webhooks/we_nope/test", headers=account.headers)
    assert missing.status_code == 404, missing.text
    too_long = await client.post(f"/v1/webhooks/{'x' * 41}/test", headers=account.headers)
    assert too_long.status_code == 422, too_long.text
    reader = await make_account(runtime, scopes=["tasks:read", "videos:write"])
    response = await client.post(path, headers=reader.headers)
    assert response.status_code == 403, response.text
    assert receiver.requests == []


async def test_a_test_event_left_unfinished_is_failed_not_retried(
    client: httpx.AsyncClient, runtime: Runtime, account: Tenant, receiver: Receiver
) -> None:
    # What a process that died while sending a test event leaves behind, its claim lapsed.
    endpoint = await create_endpoint(client, account, receiver.url)
    async with runtime.sessionmaker() as session:
        session.add(
            WebhookDelivery(
                id=new_id("msg"),
                account_id=account.id,
                endpoint_id=endpoint["id"],
                url=receiver.url,
                event_type="webhook.test",
                payload={"type": "webhook.test", "data": {}},
                status="pending",
                attempts=1,
                next_attempt_at=utcnow(),
            )
        )
        await session.commit()
    delivery = await settled_delivery(client, account, endpoint["id"])
    assert (delivery["status"], delivery["attempts"]) == ("failed", 1)
    assert "no outcome recorded" in delivery["last_error"]
    assert receiver.requests == []
