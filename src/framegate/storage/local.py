"""Local-directory storage: files under the data directory, served by the API."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from framegate.storage.base import StoredObject, check_key

READ_CHUNK_BYTES = 1024 * 1024


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def describe(self) -> str:
        return f"local directory {self.root}"

    def _path(self, key: str) -> Path:
        check_key(key)
        return self.root.joinpath(*key.split("/"))

    async def put_file(self, key: str, source: Path, content_type: str) -> int:
        return await asyncio.to_thread(self._copy, source, self._path(key))

    @staticmethod
    def _copy(source: Path, target: Path) -> int:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        shutil.copyfile(source, partial)
        # Readers see the whole file or nothing.
        os.replace(partial, target)
        return target.stat().st_size

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> int:
        return await asyncio.to_thread(self._write, self._path(key), data)

    @staticmethod
    def _write(target: Path, data: bytes) -> int:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(data)
        os.replace(partial, target)
        return len(data)

    async def get_bytes(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def open(self, key: str) -> StoredObject:
        path = self._path(key)
        handle = await asyncio.to_thread(path.open, "rb")
        size = os.fstat(handle.fileno()).st_size

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while chunk := await asyncio.to_thread(handle.read, READ_CHUNK_BYTES):
                    yield chunk
            finally:
                handle.close()

        return StoredObject(size=size, chunks=chunks())

    async def download(self, key: str, target: Path) -> None:
        await asyncio.to_thread(shutil.copyfile, self._path(key), target)

    async def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    async def delete_prefix(self, prefix: str) -> int:
        return await asyncio.to_thread(self._delete_prefix, prefix.rstrip("/"))

    def _delete_prefix(self, prefix: str) -> int:
        target = self._path(prefix)
        if target.is_file():
            target.unlink()
            return 1
        if not target.is_dir():
            return 0
        count = sum(1 for p in target.rglob("*") if p.is_file())
        shutil.rmtree(target, ignore_errors=True)
        return count

    async def objects(self, prefix: str = "") -> AsyncIterator[tuple[str, int]]:
        start = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        found = await asyncio.to_thread(self._walk, start)
        for key, size in found:
            if key.startswith(prefix):
                yield key, size

    def _walk(self, start: Path) -> list[tuple[str, int]]:
        if not start.is_dir():
            return (
                [(start.relative_to(self.root).as_posix(), start.stat().st_size)]
                if (start.is_file())
                else []
            )
        return sorted(
            (path.relative_to(self.root).as_posix(), path.stat().st_size)
            for path in start.rglob("*")
            if path.is_file() and not path.name.endswith(".part")
        )

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def presigned_url(self, key: str) -> str | None:
        return None
