"""The sliding-window counters every per-minute limit uses (the `limits` library)."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string


def sliding_window_limiter(storage_url: str) -> SlidingWindowCounterRateLimiter:
    """A sliding window counter (no burst at window edges, O(1) memory per key) on
    ``storage_url``: in process for memory://, shared between processes for redis://…"""
    async_url = storage_url if storage_url.startswith("async+") else f"async+{storage_url}"
    # Redis through redis-py's asyncio client (the `limits[redis]` extra), not coredis.
    options = {"implementation": "redispy"} if "+redis" in async_url.split("://")[0] else {}
    return SlidingWindowCounterRateLimiter(storage_from_string(async_url, **options))


async def retry_after_seconds(
    limiter: SlidingWindowCounterRateLimiter, item: RateLimitItem, *identifiers: str
) -> int:
    """Whole seconds until ``identifiers``' window under ``item`` has room again (≥ 1)."""
    stats = await limiter.get_window_stats(item, *identifiers)
    return max(1, math.ceil(stats.reset_time - time.time()))
