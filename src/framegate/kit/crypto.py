"""API-key secrets (prefix + random + checksum, stored as a keyed hash), URL signatures, and
the per-purpose subkeys both are keyed with."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import zlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from framegate.kit.encoding import BASE62, encode_int

KEY_PREFIX = "fg_live_"
_RANDOM_CHARS = 40
_CHECKSUM_CHARS = 6
API_KEY_LENGTH = len(KEY_PREFIX) + _RANDOM_CHARS + _CHECKSUM_CHARS
_BASE62_CHARS = frozenset(BASE62)
_HEX_CHARS = frozenset(string.hexdigits)
SIGNATURE_LENGTH = 64

# What each subkey of the installation secret is for. A new use of the secret gets a new
# purpose here, so no two uses ever share key material.
PURPOSE_API_KEY_HASH = "framegate/api-key-hash/v1"
PURPOSE_URL_SIGNING = "framegate/url-signing/v1"


def derive_subkey(secret: str, purpose: str) -> bytes:
    """A 32-byte key for one purpose, derived from the installation secret (HKDF-SHA256)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(
        secret.encode()
    )


def _checksum(body: str) -> str:
    return encode_int(zlib.crc32(body.encode()), BASE62, _CHECKSUM_CHARS)


def generate_api_key() -> str:
    """A new secret: ``fg_live_`` + 40 base62 characters (~238 bits) + a CRC32 checksum."""
    body = KEY_PREFIX + "".join(secrets.choice(BASE62) for _ in range(_RANDOM_CHARS))
    return body + _checksum(body)


def api_key_problem(value: str) -> str:
    """Why ``value`` cannot be an API key ('' when it is well formed).

    Structural checks only, so typos and junk are refused without hashing or a database
    lookup; everything after the prefix must be base62, which also keeps non-ASCII input
    away from the byte-oriented code that follows."""
    if not value.startswith(KEY_PREFIX):
        return "prefix"
    if not _BASE62_CHARS.issuperset(value[len(KEY_PREFIX) :]):
        return "characters"
    if len(value) != API_KEY_LENGTH:
        return "length"
    body, checksum = value[:-_CHECKSUM_CHARS], value[-_CHECKSUM_CHARS:]
    if not hmac.compare_digest(_checksum(body).encode(), checksum.encode()):
        return "checksum"
    return ""


def is_well_formed_api_key(value: str) -> bool:
    return api_key_problem(value) == ""


def hash_api_key(value: str, key: bytes) -> str:
    """Keyed hash stored instead of the secret: a leaked table cannot be brute-forced offline."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def display_hint(value: str) -> str:
    """What lists show: the prefix, the first characters and the last four."""
    return f"{value[: len(KEY_PREFIX) + 4]}…{value[-4:]}"


def sign(message: str, key: bytes) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def is_well_formed_signature(signature: str) -> bool:
    return len(signature) == SIGNATURE_LENGTH and _HEX_CHARS.issuperset(signature)


def verify_signature(message: str, signature: str, key: bytes) -> bool:
    """Constant-time check of a hex signature; anything that is not 64 hex digits is false."""
    if not is_well_formed_signature(signature):
        return False
    return hmac.compare_digest(sign(message, key).encode(), signature.lower().encode())
