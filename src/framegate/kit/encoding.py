"""Fixed-width encoding of integers in a given alphabet (ids, checksums)."""

from __future__ import annotations

import string

BASE36 = string.digits + string.ascii_lowercase
BASE62 = string.digits + string.ascii_letters


def encode_int(value: int, alphabet: str, width: int) -> str:
    """The ``width`` low-order digits of ``value`` in ``alphabet`` (most significant first)."""
    base = len(alphabet)
    chars = []
    for _ in range(width):
        value, rem = divmod(value, base)
        chars.append(alphabet[rem])
    return "".join(reversed(chars))
