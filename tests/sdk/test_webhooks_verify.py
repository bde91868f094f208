"""webhooks.verify interoperates with the standardwebhooks reference implementation."""

from __future__ import annotations

import base64
import json
import os
import time
from datetime import UTC, datetime

import pytest
from framegate_client import Framegate, WebhookVerificationError
from standardwebhooks import Webhook

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
BODY = json.dumps({"type": "task.completed", "data": {"id": "task_1", "status": "completed"}})


def signed(body: str, timestamp: int, msg_id: str = "msg_1") -> dict[str, str]:
    signature = Webhook(SECRET).sign(msg_id, datetime.fromtimestamp(timestamp, tz=UTC), body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


@pytest.fixture
def sdk() -> Framegate:
    return Framegate(api_key="fg_live_unused")


def test_accepts_a_reference_signature(sdk: Framegate) -> None:
    headers = signed(BODY, int(time.time()))
    event = sdk.webhooks.verify(BODY.encode(), headers, SECRET)
    assert event["data"]["id"] == "task_1"
    rotated = {**headers, "webhook-signature": "v1,AAAA " + headers["webhook-signature"]}
    assert sdk.webhooks.verify(BODY, rotated, SECRET)["type"] == "task.completed"


def test_rejects_tampering_wrong_secret_and_stale_timestamps(sdk: Framegate) -> None:
    now = int(time.time())
    headers = signed(BODY, now)
    with pytest.raises(WebhookVerificationError):
        sdk.webhooks.verify(BODY.replace("task_1", "task_2"), headers, SECRET)
    other = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(WebhookVerificationError):
        sdk.webhooks.verify(BODY, headers, other)
    with pytest.raises(WebhookVerificationError):
        sdk.webhooks.verify(BODY, signed(BODY, now - 301), SECRET)
    with pytest.raises(WebhookVerificationError):
        sdk.webhooks.verify(BODY, {k: v for k, v in headers.items() if k != "webhook-id"}, SECRET)


def test_accepts_either_secret_of_a_rotation(sdk: Framegate) -> None:
    # During a rotation's grace the header carries one signature per secret.
    old = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    now = int(time.time())
    when = datetime.fromtimestamp(now, tz=UTC)
    both = " ".join(Webhook(s).sign("msg_2", when, BODY) for s in (SECRET, old))
    headers = {"webhook-id": "msg_2", "webhook-timestamp": str(now), "webhook-signature": both}
    for secret in (SECRET, old):
        assert sdk.webhooks.verify(BODY, headers, secret)["data"]["id"] == "task_1"
    # The order does not matter, nor does extra whitespace between signatures.
    swapped = {**headers, "webhook-signature": "  ".join(reversed(both.split(" ")))}
    assert sdk.webhooks.verify(BODY, swapped, old)["type"] == "task.completed"
    other = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(WebhookVerificationError):
        sdk.webhooks.verify(BODY, headers, other)
    # A signature of another version is not a v1 signature, even with the right bytes.
    relabelled = {**headers, "webhook-signature": both.replace("v1,", "v2,")}
    with pytest.raises(WebhookVerificationError):
        sdk.webhooks.verify(BODY, relabelled, SECRET)
