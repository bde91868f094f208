"""Prefixed random identifiers (``task_…``, ``acct_…``) that sort by creation time."""

from __future__ import annotations

import os
import secrets
import socket
import time

from framegate.kit.encoding import BASE36, encode_int


def new_id(prefix: str) -> str:
    """``prefix_`` + 9 base36 chars of milliseconds + 16 random base36 chars (82 bits)."""
    millis = int(time.time() * 1000)
    return f"{prefix}_{encode_int(millis, BASE36, 9)}{encode_int(secrets.randbits(82), BASE36, 16)}"


def process_id() -> str:
    """This worker process, as task rows record it: host (at most 40 characters), pid and a
    random part, so that with a slot or job suffix it fits tasks.worker_id (80)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{new_id('w')[2:12]}"
