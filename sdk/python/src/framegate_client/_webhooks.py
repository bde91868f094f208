"""Standard Webhooks signature verification (no third-party dependency)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from ._exceptions import WebhookVerificationError

TOLERANCE_SECONDS = 5 * 60
SECRET_PREFIX = "whsec_"


def _secret_bytes(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookVerificationError("the webhook secret is not valid base64") from exc


def _header(headers: Mapping[str, str], name: str) -> str:
    lowered = {key.lower(): value for key, value in headers.items()}
    value = lowered.get(name)
    if not value:
        raise WebhookVerificationError(f"missing required header {name!r}")
    return value


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of a message (useful for tests and replays)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    payload: bytes | str,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> Any:
    """Verify a webhook delivery and return its parsed JSON body.

    ``webhook-signature`` may hold several space-separated signatures (during a secret
    rotation the server signs with the new and the old secret); one match is enough.

    Raises :class:`WebhookVerificationError` on a missing header, a timestamp more than
    ``tolerance`` seconds off, or no matching ``v1`` signature.
    """
    body = payload.encode() if isinstance(payload, str) else bytes(payload)
    msg_id = _header(headers, "webhook-id")
    timestamp_text = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    try:
        timestamp = int(timestamp_text)
    except ValueError as exc:
        raise WebhookVerificationError("invalid webhook-timestamp header") from exc
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError("webhook timestamp is too old or too new")
    expected = sign(secret, msg_id, timestamp, body).split(",", 1)[1].encode()
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            try:
                return json.loads(body)
            except ValueError as exc:
                raise WebhookVerificationError("the webhook body is not JSON") from exc
    raise WebhookVerificationError("no matching webhook signature")


class Webhooks:
    """``client.webhooks``: verification helpers (no network access)."""

    def verify(
        self,
        payload: bytes | str,
        headers: Mapping[str, str],
        secret: str,
        *,
        tolerance: int = TOLERANCE_SECONDS,
    ) -> Any:
        """Verify a delivery's Standard Webhooks signature and return the parsed event."""
        return verify(payload, headers, secret, tolerance=tolerance)
