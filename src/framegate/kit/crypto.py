"""API-key secrets (prefix + random + checksum, stored as a keyed hash) and URL signatures."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import zlib

from framegate.kit.encoding import BASE62, encode_int

KEY_PREFIX = "fg_live_"
_RANDOM_CHARS = 40
_CHECKSUM_CHARS = 6


def _checksum(body: str) -> str:
    return encode_int(zlib.crc32(body.encode()), BASE62, _CHECKSUM_CHARS)


def generate_api_key() -> str:
    """A new secret: ``fg_live_`` + 40 base62 characters (~238 bits) + a CRC32 checksum."""
    body = KEY_PREFIX + "".join(secrets.choice(BASE62) for _ in range(_RANDOM_CHARS))
    return body + _checksum(body)


def is_well_formed_api_key(value: str) -> bool:
    """Cheap structural check so typos and junk are refused without a database lookup."""
    if not value.startswith(KEY_PREFIX):
        return False
    if len(value) != len(KEY_PREFIX) + _RANDOM_CHARS + _CHECKSUM_CHARS:
        return False
    body, checksum = value[:-_CHECKSUM_CHARS], value[-_CHECKSUM_CHARS:]
    return hmac.compare_digest(_checksum(body), checksum)


def hash_api_key(value: str, secret: str) -> str:
    """Keyed hash stored instead of the secret: a leaked table cannot be brute-forced offline."""
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()


def display_hint(value: str) -> str:
    """What lists show: the prefix, the first characters and the last four."""
    return f"{value[: len(KEY_PREFIX) + 4]}…{value[-4:]}"


def sign(message: str, secret: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def verify_signature(message: str, signature: str, secret: str) -> bool:
    return hmac.compare_digest(sign(message, secret), signature)
