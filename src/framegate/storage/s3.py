"""S3-compatible object storage (AWS S3, Cloudflare R2, MinIO, SeaweedFS...), on obstore.

Files are streamed to the bucket (multipart above one part's size, a few parts in flight, so
a large video never sits whole in memory) with their content type and cache headers.
Clients fetch them by presigned GET URLs that point at the bucket, or at a CDN in front of
it: the API serves none of their bytes. Credentials come from the standard AWS variables
and credential chain (static keys, web identity, container and instance credentials); they
are never logged.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import obstore
from obstore.store import S3Store

from framegate.storage.base import StoredObject, check_key

# Parts of a multipart upload: S3's minimum part is 5 MiB; four in flight bound the memory
# one upload holds (measured: 16-65 MiB for files of 50-400 MB, docs/performance.md).
PART_BYTES = 8 * 1024 * 1024
PARTS_IN_FLIGHT = 4
READ_CHUNK_BYTES = 1024 * 1024
DELETE_BATCH = 1000


class S3Storage:
    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str = "",
        region: str = "us-east-1",
        prefix: str = "",
        public_base_url: str = "",
        url_ttl_seconds: int = 3600,
        store: S3Store | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url_ttl_seconds = url_ttl_seconds
        self._public_base = public_base_url.rstrip("/")
        self._endpoint = endpoint_url.rstrip("/")
        if store is None:
            options: dict[str, object] = {"region": region}
            if self._endpoint:
                # Self-hosted servers and R2 answer path-style requests on their endpoint.
                options.update(endpoint=self._endpoint, virtual_hosted_style_request=False)
            else:
                # AWS: https://<bucket>.s3.<region>.amazonaws.com/<key>, so that a CDN whose
                # origin is the bucket serves the same path.
                options.update(virtual_hosted_style_request=True)
            client = {"allow_http": True} if self._endpoint.startswith("http://") else None
            store = S3Store(
                bucket,
                prefix=self.prefix or None,
                client_options=client,  # type: ignore[arg-type]
                **options,  # type: ignore[arg-type]
            )
        self._store = store

    def describe(self) -> str:
        """Where objects go, for logs and `framegate storage check` (no credentials)."""
        where = self._endpoint or "AWS"
        return f"s3://{self.bucket}/{self.prefix + '/' if self.prefix else ''} at {where}"

    def _attributes(self, content_type: str) -> dict[str, str]:
        # An object never changes under its key (each attempt writes under its own prefix):
        # a browser or CDN may keep it as long as its URL is valid.
        return {
            "Content-Type": content_type,
            "Cache-Control": f"private, max-age={self.url_ttl_seconds}, immutable",
        }

    async def put_file(self, key: str, source: Path, content_type: str) -> int:
        check_key(key)
        size = (await asyncio.to_thread(source.stat)).st_size
        # A path is read by the client's own threads, in parts.
        await obstore.put_async(
            self._store,
            key,
            source,
            attributes=self._attributes(content_type),
            use_multipart=size > PART_BYTES,
            chunk_size=PART_BYTES,
            max_concurrency=PARTS_IN_FLIGHT,
        )
        return size

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> int:
        check_key(key)
        await obstore.put_async(
            self._store,
            key,
            data,
            attributes=self._attributes(content_type),
        )
        return len(data)

    async def get_bytes(self, key: str) -> bytes:
        check_key(key)
        result = await obstore.get_async(self._store, key)
        return bytes(await result.bytes_async())

    async def open(self, key: str) -> StoredObject:
        check_key(key)
        result = await obstore.get_async(self._store, key)

        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in result.stream(min_chunk_size=READ_CHUNK_BYTES):
                yield bytes(chunk)

        return StoredObject(size=int(result.meta["size"]), chunks=chunks())

    async def download(self, key: str, target: Path) -> None:
        stored = await self.open(key)
        handle = await asyncio.to_thread(target.open, "wb")
        try:
            async for chunk in stored.chunks:
                await asyncio.to_thread(handle.write, chunk)
        finally:
            await asyncio.to_thread(handle.close)

    async def exists(self, key: str) -> bool:
        check_key(key)
        try:
            await obstore.head_async(self._store, key)
        except FileNotFoundError:
            return False
        return True

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` (a key or a folder ending in ``/``); deleting
        what is already gone is no error, so a purge or a sweep may run twice."""
        folder = prefix.rstrip("/")
        check_key(folder)
        deleted = 0
        batch: list[str] = []
        # The object called ``prefix`` itself (listing only finds what is under a folder)...
        if not prefix.endswith("/") and await self.exists(folder):
            batch.append(folder)
        # ...and everything in the folder of that name ("outputs/ab" never takes "outputs/abc").
        async for page in obstore.list(self._store, folder + "/", chunk_size=DELETE_BATCH):
            batch.extend(str(meta["path"]) for meta in page)
            if len(batch) >= DELETE_BATCH:
                deleted += await self._delete(batch)
                batch = []
        if batch:
            deleted += await self._delete(batch)
        return deleted

    async def _delete(self, paths: list[str]) -> int:
        await obstore.delete_async(self._store, paths)
        return len(paths)

    async def objects(self, prefix: str = "") -> AsyncIterator[tuple[str, int]]:
        if prefix:
            check_key(prefix.rstrip("/"))
        async for page in obstore.list(self._store, prefix or None, chunk_size=DELETE_BATCH):
            for meta in page:
                yield str(meta["path"]), int(meta["size"])

    def local_path(self, key: str) -> Path | None:
        return None

    def presigned_url(self, key: str) -> str:
        """A GET URL of the object valid for ``url_ttl_seconds``, on the CDN's origin when one
        is configured (the CDN forwards the query to the bucket)."""
        check_key(key)
        url = obstore.sign(self._store, "GET", key, timedelta(seconds=self.url_ttl_seconds))
        if not self._public_base:
            return url
        parts = urlsplit(url)
        path = parts.path
        if self._endpoint:
            # Path-style: /bucket/key; the CDN's origin is the bucket.
            path = path.removeprefix(f"/{self.bucket}")
        return f"{self._public_base}{path}?{parts.query}"
