"""Signed, expiring URLs for stored files (HMAC over key + expiry)."""

from __future__ import annotations

import time
from urllib.parse import quote

from framegate.kit.crypto import sign, verify_signature


class URLSigner:
    def __init__(self, secret: str, ttl_seconds: int) -> None:
        self._secret = secret
        self._ttl = ttl_seconds

    def _message(self, key: str, expires: int) -> str:
        return f"files:{key}:{expires}"

    def sign_path(self, key: str, *, now: float | None = None) -> str:
        """``/v1/files/<key>?expires=…&signature=…``, valid for the configured TTL."""
        expires = int((now if now is not None else time.time()) + self._ttl)
        signature = sign(self._message(key, expires), self._secret)
        return f"/v1/files/{quote(key)}?expires={expires}&signature={signature}"

    def verify(self, key: str, expires: int, signature: str, *, now: float | None = None) -> str:
        """Returns '' when valid, else why not ('expired' or 'invalid_signature')."""
        if not verify_signature(self._message(key, expires), signature, self._secret):
            return "invalid_signature"
        if expires < (now if now is not None else time.time()):
            return "expired"
        return ""
