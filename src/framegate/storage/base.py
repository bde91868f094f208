"""The Storage protocol: where outputs, thumbnails and inputs live."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from framegate.models import Task


@dataclass
class StoredObject:
    """An object being read: its size, and its bytes in chunks (read once)."""

    size: int
    chunks: AsyncIterator[bytes]


class Storage(Protocol):
    async def put_file(self, key: str, source: Path, content_type: str) -> int:
        """Store ``source`` under ``key`` (streamed); returns the size in bytes."""
        ...

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> int: ...

    async def get_bytes(self, key: str) -> bytes:
        """A small object whole (an input image); FileNotFoundError when it is missing."""
        ...

    async def open(self, key: str) -> StoredObject:
        """An object to stream; FileNotFoundError when it is missing."""
        ...

    async def download(self, key: str, target: Path) -> None:
        """Copy an object to a local file (streamed); FileNotFoundError when it is missing."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with ``prefix``; returns how many. Deleting
        what is already gone is no error."""
        ...

    def objects(self, prefix: str = "") -> AsyncIterator[tuple[str, int]]:
        """Every stored object under ``prefix``: its key and size."""
        ...

    def local_path(self, key: str) -> Path | None:
        """A filesystem path for backends that have one (served by the API); else None."""
        ...

    def presigned_url(self, key: str) -> str | None:
        """A URL clients fetch the object from without the API (an object store's presigned
        URL), or None when the API serves it."""
        ...

    def describe(self) -> str:
        """Where objects go, for operators (never a credential)."""
        ...


def check_key(key: str) -> None:
    """Refuse a key that is empty, absolute, has an empty, ``.`` or ``..`` segment, a
    backslash or a control character: keys are made by framegate, never by a client."""
    segments = key.split("/")
    if any(segment in ("", ".", "..") for segment in segments) or "\\" in key:
        raise ValueError(f"invalid storage key: {key!r}")
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise ValueError(f"invalid storage key: {key!r}")


def output_key(task_id: str, name: str) -> str:
    return f"outputs/{task_id}/{name}"


def attempt_prefix(task: Task) -> str:
    """Where one attempt of a task writes its outputs: ``outputs/{task_id}/{attempt}/``."""
    return output_key(task.id, f"{task.attempts}/")


def input_key(task_id: str, name: str) -> str:
    return f"inputs/{task_id}/{name}"
