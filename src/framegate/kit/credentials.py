"""Where a request carries its API key."""

from __future__ import annotations

from collections.abc import Mapping

# Headers other vendors' clients carry the key in, as the key service reads it.
_KEY_HEADERS = ("api-key", "x-api-key")


def credentials(headers: Mapping[str, str]) -> str | None:
    """The request's key as an ``Authorization`` value: the header itself, or a key sent
    the way PixVerse (``API-KEY``) and others (``X-API-Key``) send it."""
    authorization = headers.get("authorization")
    if authorization:
        return authorization
    for name in _KEY_HEADERS:
        value = headers.get(name)
        if value:
            return f"Bearer {value.strip()}"
    return None
