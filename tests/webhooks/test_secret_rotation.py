"""Rotating an endpoint's secret: during the grace period deliveries carry a signature by the
old secret beside the new one, after it only the new one; the grace period's bounds."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from framegate_client import Framegate
from framegate_client import WebhookVerificationError as SDKVerificationError
from sqlalchemy import update
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from framegate.kit.time import utcnow
from framegate.models import WebhookEndpoint
from framegate.runtime import Runtime
from framegate.webhooks.service import DEFAULT_ROTATION_GRACE_SECONDS, MAX_ROTATION_GRACE_SECONDS
from tests.conftest import Tenant
from tests.webhooks.conftest import Received, Receiver, create_endpoint, submit


async def rotate(
    client: httpx.AsyncClient, tenant: Tenant, endpoint_id: str, body: Any = None
) -> dict[str, Any]:
    path = f"/v1/webhooks/{endpoint_id}/rotate-secret"
    kwargs: dict[str, Any] = {} if body is None else {"json": body}
    response = await client.post(path, headers=tenant.headers, **kwargs)
    assert response.status_code == 200, response.text
    rotated: dict[str, Any] = response.json()
    return rotated


async def send_test_event(client: httpx.AsyncClient, tenant: Tenant, endpoint_id: str) -> None:
    response = await client.post(f"/v1/webhooks/{endpoint_id}/test", headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert response.json()["succeeded"] is True, response.json()


def verifies(secret: str, request: Received) -> bool:
    try:
        Webhook(secret).verify(request.body, request.headers)
    except WebhookVerificationError:
        return False
    return True


async def test_both_secrets_verify_during_the_grace_period(
    client: httpx.AsyncClient, account: Tenant, receiver: Receiver
) -> None:
    endpoint = await create_endpoint(client, account, receiver.url)
    old = endpoint["secret"]
    assert endpoint["previous_secret_expires_at"] is None
    before = int(time.time())
    rotated = await rotate(client, account, endpoint["id"])  # no body: the default grace
    new = rotated["secret"]
    assert new != old
    expires = rotated["previous_secret_expires_at"]
    grace = DEFAULT_ROTATION_GRACE_SECONDS
    assert before + grace <= expires <= int(time.time()) + grace + 1
    shown = await client.get(f"/v1/webhooks/{endpoint['id']}", headers=account.headers)
    assert shown.json()["previous_secret_expires_at"] == expires

    # A task event through the delivery job, then a test event through the test route.
    task_id = await submit(client, account)
    (task_request,) = await receiver.wait_for(1)
    await send_test_event(client, account, endpoint["id"])
    requests = await receiver.wait_for(2)
    assert requests[1].headers["webhook-id"] != task_request.headers["webhook-id"]
    sdk = Framegate(api_key=account.api_key, base_url="http://127.0.0.1:9")
    unrelated = (await create_endpoint(client, account, receiver.url))["secret"]
    for request in requests:
        signatures = request.headers["webhook-signature"].split(" ")
        assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
        assert verifies(old, request) and verifies(new, request)
        sdk.webhooks.verify(request.body, request.headers, old)
        sdk.webhooks.verify(request.body, request.headers, new)
        assert not verifies(unrelated, request)
    event = Webhook(new).verify(task_request.body, task_request.headers)
    assert event["type"] == "task.completed" and event["data"]["id"] == task_id


async def test_only_the_new_secret_verifies_after_the_grace_period(
    client: httpx.AsyncClient, runtime: Runtime, account: Tenant, receiver: Receiver
) -> None:
    endpoint = await create_endpoint(client, account, receiver.url)
    old = endpoint["secret"]
    new = (await rotate(client, account, endpoint["id"], {"grace_period_seconds": 3600}))["secret"]
    # The grace period runs out.
    async with runtime.sessionmaker() as session:
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint["id"])
            .values(previous_secret_expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    shown = await client.get(f"/v1/webhooks/{endpoint['id']}", headers=account.headers)
    assert shown.json()["previous_secret_expires_at"] is None

    await submit(client, account)
    (request,) = await receiver.wait_for(1)
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    assert verifies(new, request) and not verifies(old, request)
    sdk = Framegate(api_key=account.api_key, base_url="http://127.0.0.1:9")
    sdk.webhooks.verify(request.body, request.headers, new)
    with pytest.raises(SDKVerificationError):
        sdk.webhooks.verify(request.body, request.headers, old)


async def test_zero_grace_ends_the_old_secret_at_once(
    client: httpx.AsyncClient, account: Tenant, receiver: Receiver
) -> None:
    endpoint = await create_endpoint(client, account, receiver.url)
    rotated = await rotate(client, account, endpoint["id"], {"grace_period_seconds": 0})
    assert rotated["previous_secret_expires_at"] is None
    await send_test_event(client, account, endpoint["id"])
    (request,) = await receiver.wait_for(1)
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    assert verifies(rotated["secret"], request) and not verifies(endpoint["secret"], request)


async def test_rotating_again_ends_the_earlier_grace(
    client: httpx.AsyncClient, account: Tenant, receiver: Receiver
) -> None:
    endpoint = await create_endpoint(client, account, receiver.url)
    second = (await rotate(client, account, endpoint["id"]))["secret"]
    third = await rotate(client, account, endpoint["id"], {"grace_period_seconds": 60})
    await send_test_event(client, account, endpoint["id"])
    (request,) = await receiver.wait_for(1)
    assert verifies(third["secret"], request) and verifies(second, request)
    assert not verifies(endpoint["secret"], request)
    assert third["previous_secret_expires_at"] <= int(time.time()) + 61


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"grace_period_seconds": -1}, "grace_period_seconds"),
        ({"grace_period_seconds": MAX_ROTATION_GRACE_SECONDS + 1}, "grace_period_seconds"),
        ({"grace_period_seconds": 10**30}, "grace_period_seconds"),
        ({"grace_period_seconds": True}, "grace_period_seconds"),
        ({"grace_period_seconds": "3600"}, "grace_period_seconds"),
        ({"grace_period_seconds": 1.5}, "grace_period_seconds"),
        ({"grace_period_seconds": None}, "grace_period_seconds"),
        ({"grace_seconds": 60}, "grace_seconds"),
        ([60], None),
        ("60", None),
    ],
    ids=[
        "negative",
        "over-max",
        "huge",
        "bool",
        "string",
        "float",
        "null",
        "unknown",
        "list",
        "str",
    ],
)
async def test_grace_period_out_of_bounds_is_refused(
    client: httpx.AsyncClient, account: Tenant, receiver: Receiver, body: Any, param: str | None
) -> None:
    endpoint = await create_endpoint(client, account, receiver.url)
    path = f"/v1/webhooks/{endpoint['id']}/rotate-secret"
    response = await client.post(path, json=body, headers=account.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == param
    if param is not None:
        assert param in response.json()["error"]["message"]
    # Nothing was rotated: the secret the endpoint was created with still signs alone.
    await send_test_event(client, account, endpoint["id"])
    (request,) = await receiver.wait_for(1)
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    assert verifies(endpoint["secret"], request)
