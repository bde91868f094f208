"""In-process wake-ups: 'a task was queued' for workers, 'task X changed' for waiters."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable

# With changes announced across processes, waiters still re-read this often, in case a
# message was lost with no reconnect to tell (belt and braces, not the way changes arrive).
_SAFETY_RECHECK_SECONDS = 30.0


class TaskSignals:
    def __init__(self) -> None:
        # Set when changes made by other processes are announced here too (distributed
        # mode's PostgreSQL notifications): waiters need not re-read the database.
        self.announced_across_processes = False
        self._queued = asyncio.Event()
        self._changed: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._listeners: list[Callable[[str], None]] = []

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(task_id)`` whenever a task changes in this process."""
        self._listeners.append(listener)

    def task_queued(self) -> None:
        self._queued.set()

    async def wait_for_queued(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queued.wait(), timeout)
        self._queued.clear()

    def recheck_after(self, seconds: float) -> float:
        """How long a waiter may wait for a change before re-reading: ``seconds`` while
        other processes' changes are not announced here, a long safety interval once they
        are."""
        return _SAFETY_RECHECK_SECONDS if self.announced_across_processes else seconds

    def wake_all(self) -> None:
        """Wake every waiter: changes may have been missed (they re-read)."""
        for events in self._changed.values():
            for event in events:
                event.set()

    def task_changed(self, task_id: str) -> None:
        for listener in self._listeners:
            listener(task_id)
        for event in self._changed.get(task_id, ()):
            event.set()

    async def wait_for_change(self, task_id: str, timeout: float) -> None:
        """Returns when the task changes in this process or after ``timeout`` seconds."""
        event = asyncio.Event()
        self._changed[task_id].add(event)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            waiters = self._changed[task_id]
            waiters.discard(event)
            if not waiters:
                del self._changed[task_id]
