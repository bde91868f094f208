"""Local-directory storage: files under the data directory, served by the API."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path, PurePosixPath


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        parts = PurePosixPath(key).parts
        if not parts or any(part in ("..", "") for part in parts) or key.startswith("/"):
            raise ValueError(f"invalid storage key: {key!r}")
        return self.root.joinpath(*parts)

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
        shutil.rmtree(target)
        return count

    def local_path(self, key: str) -> Path | None:
        return self._path(key)
