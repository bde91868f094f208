"""Where a client fetches a stored file: straight from the object store when it presigns
URLs (the API serves none of the bytes), else the API's signed, expiring /v1/files link."""

from __future__ import annotations

from collections.abc import Callable

from framegate.storage.base import Storage
from framegate.storage.signing import URLSigner


class FileLinks:
    def __init__(self, storage: Storage, signer: URLSigner) -> None:
        self._storage = storage
        self._signer = signer

    def url(self, key: str, absolute: Callable[[str], str]) -> str:
        """The file's URL; ``absolute`` turns the API's own paths into absolute URLs."""
        direct = self._storage.presigned_url(key)
        return direct if direct is not None else absolute(self._signer.sign_path(key))

    def public_url(self, key: str, api_base: str) -> str | None:
        """The file's URL for someone outside (a vendor fetching an input image): the
        object store's, or the API's under ``api_base``; None when neither exists."""
        direct = self._storage.presigned_url(key)
        if direct is not None:
            return direct
        if not api_base:
            return None
        return api_base.rstrip("/") + self._signer.sign_path(key)
