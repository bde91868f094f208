"""Signed, expiring URLs for stored files (HMAC over key + expiry)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from urllib.parse import quote

from framegate.kit.crypto import PURPOSE_URL_SIGNING, derive_subkey, sign, verify_signature


class URLSigner:
    """Signs with the installation secret's URL subkey; ``previous_secrets`` still verify,
    so links handed out before a secret rotation keep working until they expire."""

    def __init__(
        self, secret: str, ttl_seconds: int, *, previous_secrets: Sequence[str] = ()
    ) -> None:
        self._key = derive_subkey(secret, PURPOSE_URL_SIGNING)
        self._verify_keys = [self._key] + [
            derive_subkey(old, PURPOSE_URL_SIGNING) for old in previous_secrets
        ]
        self._ttl = ttl_seconds

    def _message(self, key: str, expires: int) -> str:
        return f"files:{key}:{expires}"

    def sign_path(self, key: str, *, now: float | None = None) -> str:
        """``/v1/files/<key>?expires=…&signature=…``, valid for the configured TTL."""
        expires = int((now if now is not None else time.time()) + self._ttl)
        signature = sign(self._message(key, expires), self._key)
        return f"/v1/files/{quote(key)}?expires={expires}&signature={signature}"

    def verify(self, key: str, expires: int, signature: str, *, now: float | None = None) -> str:
        """Returns '' when valid, else why not ('expired' or 'invalid_signature')."""
        message = self._message(key, expires)
        if not any(verify_signature(message, signature, k) for k in self._verify_keys):
            return "invalid_signature"
        if expires < (now if now is not None else time.time()):
            return "expired"
        return ""
