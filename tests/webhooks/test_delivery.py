"""The delivery job against real HTTP receivers: signing, retries, 410, 429, redirects."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from framegate_client import Framegate
from framegate_client import WebhookVerificationError as SDKVerificationError
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from framegate.kit.http import retry_after_seconds
from framegate.kit.ids import new_id
from framegate.kit.time import utcnow
from framegate.models import WebhookDelivery
from framegate.runtime import Runtime
from framegate.webhooks.jobs import WebhookDeliveryJob
from tests.conftest import Tenant, wait_for_task
from tests.waiting import wait_until
from tests.webhooks.conftest import (
    Receiver,
    create_endpoint,
    deliveries,
    settled_delivery,
    submit,
)


def verify(secret: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    payload: dict[str, Any] = Webhook(secret).verify(body, headers)
    return payload


async def test_retries_until_accepted_with_one_webhook_id(
    client: httpx.AsyncClient, account: Tenant, receiver: Receiver
) -> None:
    receiver.respond(500, 500, 500)
    endpoint = await create_endpoint(client, account, receiver.url)
    task_id = await submit(client, account)
    assert (await wait_for_task(client, account, task_id))["status"] == "completed"

    requests = await receiver.wait_for(4)
    delivery = await settled_delivery(client, account, endpoint["id"])
    assert len(receiver.requests) == 4  # accepted on the 4th attempt; no 5th
    assert {r.headers["webhook-id"] for r in requests} == {delivery["id"]}
    for request in requests:
        event = verify(endpoint["secret"], request.body, request.headers)
        assert event["type"] == "task.completed"
        assert event["data"]["id"] == task_id and event["data"]["status"] == "completed"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["user-agent"].startswith("framegate")
        assert request.path == "/hook"
    # The schedule's 0.2 s waits separate the attempts.
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(requests)]
    assert min(gaps) >= 0.19, gaps
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 4
    assert delivery["last_status_code"] == 200 and delivery["last_error"] is None
    assert delivery["task_id"] == task_id and delivery["delivered_at"] is not None


async def test_tampered_body_or_wrong_secret_fails_verification(
    client: httpx.AsyncClient, account: Tenant, receiver: Receiver
) -> None:
    endpoint = await create_endpoint(client, account, receiver.url)
    await submit(client, account)
    (request,) = await receiver.wait_for(1)
    event = verify(endpoint["secret"], request.body, request.headers)

    tampered = json.dumps({**event, "type": "task.failed"}, separators=(",", ":")).encode()
    with pytest.raises(WebhookVerificationError):
        verify(endpoint["secret"], tampered, request.headers)
    with pytest.raises(WebhookVerificationError):
        verify(endpoint["secret"], request.body + b" ", request.headers)
    other = (await create_endpoint(client, account, receiver.url))["secret"]
    with pytest.raises(WebhookVerificationError):
        verify(other, request.body, request.headers)


async def test_gives_up_after_the_schedule(
    client: httpx.AsyncClient, account: Tenant, receiver: Receiver
) -> None:
    receiver.respond(*[503] * 10)
    endpoint = await create_endpoint(client, account, receiver.url)
    await submit(client, account)
    delivery = await settled_delivery(client, account, endpoint["id"])
    assert delivery["status"] == "failed"
    assert delivery["attempts"] == 5  # the length of the test retry schedule
    assert delivery["last_status_code"] == 503 and delivery["last_error"] == "HTTP 503"
    assert len(receiver.requests) == 5


async def test_gone_disables_the_endpoint_and_fails_its_pending_deliveries(
    client: httpx.AsyncClient, runtime: Runtime, account: Tenant, receiver: Receiver
) -> None:
    receiver.respond(410)
    endpoint = await create_endpoint(client, account, receiver.url)
    # A delivery waiting for a later retry: disabling the endpoint must fail it too.
    waiting_id = new_id("msg")
    async with runtime.sessionmaker() as session:
        session.add(
            WebhookDelivery(
                id=waiting_id,
                account_id=account.id,
                endpoint_id=endpoint["id"],
                url=receiver.url,
                event_type="task.completed",
                payload={"type": "task.completed", "data": {}},
                status="pending",
                attempts=1,
                next_attempt_at=utcnow() + timedelta(hours=1),
            )
        )
        await session.commit()
    await submit(client, account)
    await receiver.wait_for(1)
    path = f"/v1/webhooks/{endpoint['id']}"

    async def disabled() -> bool:
        response = await client.get(path, headers=account.headers)
        return response.json()["enabled"] is False

    await wait_until(disabled, what="the endpoint to be disabled")
    shown = (await client.get(path, headers=account.headers)).json()
    assert "410" in shown["disabled_reason"]
    rows = {d["id"]: d for d in await deliveries(client, account, endpoint["id"])}
    assert {d["status"] for d in rows.values()} == {"failed"}
    assert rows[waiting_id]["attempts"] == 1 and "410" in rows[waiting_id]["last_error"]
    sent = next(d for d in rows.values() if d["id"] != waiting_id)
    assert (sent["attempts"], sent["last_status_code"]) == (1, 410)

    # A later task's event is not sent to the disabled endpoint.
    task_id = await submit(client, account)
    await wait_for_task(client, account, task_id)
    assert len(await deliveries(client, account, endpoint["id"])) == 2
    assert len(receiver.requests) == 1


async def test_retry_after_on_429_is_honoured(
    client: httpx.AsyncClient, account: Tenant, receiver: Receiver
) -> None:
    receiver.respond((429, {"Retry-After": "1"}))
    endpoint = await create_endpoint(client, account, receiver.url)
    await submit(client, account)
    first, second = await receiver.wait_for(2)
    # The schedule says 0.2 s; the receiver asked for 1 s.
    assert second.at - first.at >= 0.98
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    delivery = await settled_delivery(client, account, endpoint["id"])
    assert (delivery["status"], delivery["attempts"]) == ("succeeded", 2)


def test_retry_after_header_forms() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("7", now) == 7
    assert retry_after_seconds(" 1.5 ", now) == 1.5
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90
    assert retry_after_seconds(format_datetime(now - timedelta(hours=1), usegmt=True), now) == 0
    assert retry_after_seconds("-5", now) == 0
    assert retry_after_seconds("99999999", now) == 24 * 3600
    for junk in (None, "", "soon", "nan", "inf"):
        assert retry_after_seconds(junk, now) is None, junk


async def test_redirects_are_not_followed(
    client: httpx.AsyncClient,
    account: Tenant,
    receiver: Receiver,
    make_receiver: Callable[[], Receiver],
) -> None:
    target = make_receiver()
    receiver.respond(*[(302, {"Location": target.url})] * 10)
    endpoint = await create_endpoint(client, account, receiver.url)
    await submit(client, account)
    delivery = await settled_delivery(client, account, endpoint["id"])
    assert (delivery["status"], delivery["attempts"]) == ("failed", 5)
    assert delivery["last_status_code"] == 302 and "redirect" in delivery["last_error"]
    assert len(receiver.requests) == 5
    assert target.requests == []


async def test_task_webhook_url_is_signed_with_the_task_secret(
    client: httpx.AsyncClient, account: Tenant, receiver: Receiver
) -> None:
    task_id = await submit(client, account, webhook_url=receiver.url)
    (request,) = await receiver.wait_for(1)
    secret = (await client.get("/v1/webhooks/task-secret", headers=account.headers)).json()
    event = verify(secret["secret"], request.body, request.headers)
    assert event["type"] == "task.completed"
    assert event["data"]["id"] == task_id and event["data"]["status"] == "completed"
    assert event["data"]["credits_used"] >= 1
    assert request.headers["webhook-id"].startswith("msg_")


async def test_failed_task_emits_task_failed(
    client: httpx.AsyncClient, account: Tenant, receiver: Receiver
) -> None:
    endpoint = await create_endpoint(client, account, receiver.url)
    task_id = await submit(client, account, model="test-failing")
    (request,) = await receiver.wait_for(1)
    event = verify(endpoint["secret"], request.body, request.headers)
    assert event["type"] == "task.failed"
    assert event["data"]["id"] == task_id and event["data"]["status"] == "failed"
    assert event["data"]["error"]["code"]


async def test_only_subscribed_events_are_sent(
    client: httpx.AsyncClient, account: Tenant, receiver: Receiver
) -> None:
    await create_endpoint(client, account, receiver.url, events=["task.failed"])
    completed = await submit(client, account)
    await wait_for_task(client, account, completed)
    failed = await submit(client, account, model="test-failing")
    (request,) = await receiver.wait_for(1)
    event = json.loads(request.body)
    assert (event["type"], event["data"]["id"]) == ("task.failed", failed)


async def test_disabled_endpoint_gets_nothing(
    client: httpx.AsyncClient, runtime: Runtime, account: Tenant, receiver: Receiver
) -> None:
    endpoint = await create_endpoint(client, account, receiver.url)
    path = f"/v1/webhooks/{endpoint['id']}"
    response = await client.patch(path, json={"enabled": False}, headers=account.headers)
    assert response.status_code == 200, response.text
    # An event queued before the endpoint was disabled, falling due after.
    async with runtime.sessionmaker() as session:
        session.add(
            WebhookDelivery(
                id=new_id("msg"),
                account_id=account.id,
                endpoint_id=endpoint["id"],
                url=receiver.url,
                event_type="task.completed",
                payload={"type": "task.completed", "data": {}},
                status="pending",
                attempts=0,
                next_attempt_at=utcnow(),
            )
        )
        await session.commit()
    delivery = await settled_delivery(client, account, endpoint["id"])
    assert (delivery["status"], delivery["attempts"]) == ("failed", 0)
    assert "disabled" in delivery["last_error"]
    assert receiver.requests == []


@pytest.mark.usefixtures("paused_job")
async def test_two_jobs_never_send_the_same_attempt(
    client: httpx.AsyncClient, runtime: Runtime, account: Tenant, receiver: Receiver
) -> None:
    endpoint = await create_endpoint(client, account, receiver.url)
    ids = [new_id("msg") for _ in range(20)]
    async with runtime.sessionmaker() as session:
        for delivery_id in ids:
            session.add(
                WebhookDelivery(
                    id=delivery_id,
                    account_id=account.id,
                    endpoint_id=endpoint["id"],
                    url=receiver.url,
                    event_type="task.completed",
                    payload={"type": "task.completed", "data": {"id": delivery_id}},
                    status="pending",
                    attempts=0,
                    next_attempt_at=utcnow(),
                )
            )
        await session.commit()
    settings = runtime.settings

    def job() -> WebhookDeliveryJob:
        return WebhookDeliveryJob(
            sessionmaker=runtime.sessionmaker,
            read_sessionmaker=runtime.read_sessionmaker,
            fetch_policy=settings.fetch_policy,
            retry_schedule=settings.webhook_retry_schedule,
            timeout_seconds=settings.webhook_timeout_seconds,
            poll_seconds=settings.webhook_poll_seconds,
            concurrency=4,
        )

    first, second = job(), job()
    sent = await asyncio.gather(first.run_once(), second.run_once())
    # Other tests' leftovers may be due as well; each of ours went out exactly once.
    assert sum(sent) >= len(ids)
    assert sorted(r.headers["webhook-id"] for r in receiver.requests) == sorted(ids)
    rows = await deliveries(client, account, endpoint["id"])
    assert {(d["status"], d["attempts"]) for d in rows} == {("succeeded", 1)}
    # Delivered is final: another pass sends none of them again.
    await first.run_once()
    assert len(receiver.requests) == len(ids)


async def test_sdk_verifies_a_real_delivery_and_rejects_a_tampered_one(
    client: httpx.AsyncClient, account: Tenant, receiver: Receiver
) -> None:
    endpoint = await create_endpoint(client, account, receiver.url)
    task_id = await submit(client, account)
    (request,) = await receiver.wait_for(1)
    sdk = Framegate(api_key=account.api_key, base_url="http://127.0.0.1:9")
    event = sdk.webhooks.verify(request.body, request.headers, endpoint["secret"])
    assert event["type"] == "task.completed" and event["data"]["id"] == task_id
    with pytest.raises(SDKVerificationError):
        sdk.webhooks.verify(request.body + b" ", request.headers, endpoint["secret"])
