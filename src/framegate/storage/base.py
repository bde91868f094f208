"""The Storage protocol: where outputs, thumbnails and inputs live."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from framegate.models import Task


class Storage(Protocol):
    async def put_file(self, key: str, source: Path, content_type: str) -> int:
        """Store ``source`` under ``key``; returns the size in bytes."""
        ...

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> int: ...

    async def get_bytes(self, key: str) -> bytes: ...

    async def exists(self, key: str) -> bool: ...

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with ``prefix``; returns how many."""
        ...

    def local_path(self, key: str) -> Path | None:
        """A filesystem path for backends that have one (served by the API); else None."""
        ...


def output_key(task_id: str, name: str) -> str:
    return f"outputs/{task_id}/{name}"


def attempt_prefix(task: Task) -> str:
    """Where one attempt of a task writes its outputs: ``outputs/{task_id}/{attempt}/``."""
    return output_key(task.id, f"{task.attempts}/")


def input_key(task_id: str, name: str) -> str:
    return f"inputs/{task_id}/{name}"
