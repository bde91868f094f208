"""When to retry an answer and how long to wait first (one implementation for both clients)."""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime

import httpx

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_DELAY = 60.0


def should_retry(response: httpx.Response) -> bool:
    """Whether an answer invites a retry (429, 5xx, or an idempotent request in progress)."""
    if response.status_code in RETRY_STATUSES:
        return True
    if response.status_code == 409:
        return "retry-after" in response.headers
    return False


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delay-seconds or an HTTP date), at least 0.

    None when the header is absent or unusable.
    """
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value.strip())
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # an HTTP date is GMT; a naive one here is malformed
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if seconds == seconds else None  # NaN is unusable


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """:func:`retry_after_seconds` capped at ``MAX_RETRY_DELAY``, the most a client waits."""
    seconds = retry_after_seconds(value, now)
    return None if seconds is None else min(seconds, MAX_RETRY_DELAY)


def retry_delay(attempt: int, retry_after: str | None) -> float:
    """Exponential backoff with jitter (0.5 s, 1 s, 2 s … capped), or the server's Retry-After."""
    honoured = parse_retry_after(retry_after)
    if honoured is not None:
        return honoured + random.uniform(0, 0.25)
    base = min(8.0, 0.5 * 2.0**attempt)
    return base * random.uniform(0.75, 1.25)
