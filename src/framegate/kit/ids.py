"""Prefixed random identifiers (``task_…``, ``acct_…``) that sort by creation time."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, rem = divmod(value, 36)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """``prefix_`` + 9 base36 chars of milliseconds + 16 random base36 chars."""
    millis = int(time.time() * 1000)
    return f"{prefix}_{_base36(millis, 9)}{_base36(secrets.randbits(82), 16)}"
