"""Outgoing HTTP: the one TLS context and the one ``Retry-After`` parser.

Every outgoing client (SSRF-safe fetches, vendor APIs, webhook deliveries) verifies TLS
with the same context, and every answer that asks to be retried later is read the same way.
"""

from __future__ import annotations

import email.utils
import functools
import math
import ssl
from datetime import datetime

import httpx

from framegate.kit.time import as_utc, utcnow

# Nobody parks a retry for longer than this with Retry-After.
MAX_RETRY_AFTER_SECONDS = 24 * 3600.0


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS context of every outgoing client, built once: loading the CA bundle is the
    slow part (~50 ms) and the context is only read. Environment variables do not change
    it (``trust_env=False``), so what is trusted does not depend on how the process started."""
    return httpx.create_ssl_context(trust_env=False)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header (delay in seconds, or an HTTP date) as seconds from ``now``,
    between 0 and a day; None when it is absent or unreadable."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = (as_utc(when) - (now or utcnow())).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)
