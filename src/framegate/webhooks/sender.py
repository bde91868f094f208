"""One signed POST of a webhook event: its URL checked and pinned, its answer classified.

The delivery job sends every attempt through here, and so does
``POST /v1/webhooks/{id}/test``: a test event meets the same address rules and signing.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from framegate.exceptions import InvalidValue
from framegate.kit.http import retry_after_seconds, tls_context
from framegate.kit.safe_fetch import REDIRECT_STATUSES, FetchPolicy, pinned_request, validate_url
from framegate.kit.time import utcnow

URL_REMEDY = "Use a publicly reachable https endpoint of your backend."
# A claim outlives the send timeout by this much before another process may retry it.
CLAIM_MARGIN_SECONDS = 60.0
_MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None
    url: str | None = None
    # Not sent at all: its endpoint was disabled or deleted.
    skipped: bool = False

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410


def _classify(response: httpx.Response, url: str) -> Outcome:
    status = response.status_code
    if 200 <= status < 300:
        return Outcome(status_code=status, url=url)
    if status in REDIRECT_STATUSES:
        error = f"HTTP {status}: redirects are not followed; register the final URL."
        return Outcome(status_code=status, error=error, url=url)
    retry_after = None
    if status in (429, 503):
        retry_after = retry_after_seconds(response.headers.get("retry-after"))
    return Outcome(status_code=status, error=f"HTTP {status}", retry_after=retry_after, url=url)


def signature_header(secrets: Sequence[str], msg_id: str, timestamp: datetime, body: str) -> str:
    """The ``webhook-signature`` value: one ``v1,<base64>`` per secret, space-separated, as
    Standard Webhooks allows while a rotated-out secret is still honoured."""
    return " ".join(Webhook(secret).sign(msg_id, timestamp, body) for secret in secrets)


def _signed_request(
    url: httpx.URL, ip: str, delivery_id: str, secrets: Sequence[str], body: str
) -> httpx.Request:
    """A POST of ``body`` to the validated address, signed over exactly those bytes."""
    pinned = pinned_request(url, ip, accept="application/json")
    timestamp = utcnow()
    headers = {
        **pinned.headers,
        "Content-Type": "application/json",
        "webhook-id": delivery_id,
        "webhook-timestamp": str(math.floor(timestamp.timestamp())),
        "webhook-signature": signature_header(secrets, delivery_id, timestamp, body),
    }
    return httpx.Request(
        "POST", pinned.url, headers=headers, content=body.encode(), extensions=pinned.extensions
    )


async def send_event(
    url: str,
    secrets: Sequence[str],
    delivery_id: str,
    payload: dict[str, Any],
    *,
    fetch_policy: FetchPolicy,
    timeout: float,
) -> Outcome:
    """POST ``payload`` once, signed with each of ``secrets``; never raises for the
    receiver's sake (a refused URL, a timeout or an error status is an ``Outcome``)."""
    body = json.dumps(payload, separators=(",", ":"))
    try:
        async with asyncio.timeout(timeout):
            # Validated again at every send: the name may resolve elsewhere by now.
            parsed, ip = await validate_url(url, fetch_policy, param="url", remedy=URL_REMEDY)
            request = _signed_request(parsed, ip, delivery_id, secrets, body)
            async with httpx.AsyncClient(
                verify=tls_context(), trust_env=False, follow_redirects=False, timeout=timeout
            ) as client:
                response = await client.send(request, stream=True)
                await response.aclose()
    except InvalidValue as exc:
        return Outcome(error=f"Refused: {exc.message}", url=url)
    except (TimeoutError, httpx.TimeoutException):
        return Outcome(error=f"No answer within {timeout:g}s.", url=url)
    except httpx.ConnectError:
        return Outcome(error="Could not connect.", url=url)
    except httpx.HTTPError as exc:
        return Outcome(error=f"HTTP error: {type(exc).__name__}.", url=url)
    return _classify(response, url)


def sent_values(outcome: Outcome) -> dict[str, Any]:
    """The delivery columns an attempt that was sent sets, whatever came of it."""
    values: dict[str, Any] = {
        "last_status_code": outcome.status_code,
        "last_error": truncate_error(outcome.error),
    }
    if outcome.url is not None:
        values["url"] = outcome.url
    return values


def final_values(status: str, now: datetime, *, error: str | None = None) -> dict[str, Any]:
    """The delivery columns that end it as ``succeeded`` or ``failed``."""
    values: dict[str, Any] = {"status": status, "next_attempt_at": None, "updated_at": now}
    if status == "failed":
        values["last_error"] = truncate_error(error)
    else:
        values["delivered_at"] = now
    return values


def truncate_error(error: str | None) -> str | None:
    return None if error is None else error[:_MAX_ERROR_CHARS]
