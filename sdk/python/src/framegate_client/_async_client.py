"""The asynchronous client: the shared operations, performed with ``httpx.AsyncClient``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

import httpx

from ._base_client import BaseClient
from ._operations import Call, Close, Drain, Emit, Next, Open, Opened, Operation, Runner, Sleep

T = TypeVar("T")


class AsyncFramegate(BaseClient[httpx.AsyncClient]):
    """Asynchronous framegate client (same API as :class:`Framegate`, awaitable)."""

    is_async = True
    _http_class = httpx.AsyncClient
    _sleep = staticmethod(asyncio.sleep)

    async def __aenter__(self) -> AsyncFramegate:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the underlying HTTP connections."""
        await self._http.aclose()

    async def _run(self, work: Call[T] | Operation[T]) -> T:
        runner = Runner(self._operation(work))
        async for _ in self._drive(runner):
            pass
        result: T = runner.result
        return result

    def _iterate(self, work: Operation[None]) -> AsyncIterator[Any]:
        return self._drive(Runner(work))

    async def _drive(self, runner: Runner) -> AsyncIterator[Any]:
        """Perform each step of the operation, awaiting its I/O; yield what it emits."""
        try:
            for step in runner:
                if not isinstance(step, Emit):
                    try:
                        runner.succeed(await self._perform(step))
                    except Exception as error:
                        runner.fail(error)
                else:
                    yield step.value
        finally:
            for opened in runner.close():
                await opened.response.aclose()

    async def _perform(self, step: Open | Next | Drain | Close | Sleep) -> Any:
        if isinstance(step, Open):
            response = await self._http.send(step.request, stream=True)
            chunks = response.aiter_lines() if step.lines else response.aiter_bytes()
            return Opened(response, chunks)
        if isinstance(step, Next):
            return await anext(step.opened.iterator, None)
        if isinstance(step, Drain):
            await step.opened.response.aread()
        if isinstance(step, Drain | Close):
            return await step.opened.response.aclose()
        return await self._sleep(step.seconds)

    async def _adownload(self, url: str, path: Path) -> Path:
        return await self._run(self._save(url, path))
