"""Prefixed random identifiers (``task_…``, ``acct_…``) that sort by creation time."""

from __future__ import annotations

import secrets
import time

from framegate.kit.encoding import BASE36, encode_int


def new_id(prefix: str) -> str:
    """``prefix_`` + 9 base36 chars of milliseconds + 16 random base36 chars (82 bits)."""
    millis = int(time.time() * 1000)
    return f"{prefix}_{encode_int(millis, BASE36, 9)}{encode_int(secrets.randbits(82), BASE36, 16)}"
