"""The synchronous client: the shared operations, performed with ``httpx.Client``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx

from ._base_client import BaseClient
from ._operations import Call, Close, Drain, Emit, Next, Open, Opened, Operation, Runner, Sleep

T = TypeVar("T")


class Framegate(BaseClient[httpx.Client]):
    """Synchronous framegate client."""

    is_async = False
    _http_class = httpx.Client
    _sleep = staticmethod(time.sleep)

    def __enter__(self) -> Framegate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying HTTP connections."""
        self._http.close()

    def _run(self, work: Call[T] | Operation[T]) -> T:
        runner = Runner(self._operation(work))
        for _ in self._drive(runner):
            pass
        result: T = runner.result
        return result

    def _iterate(self, work: Operation[None]) -> Iterator[Any]:
        return self._drive(Runner(work))

    def _drive(self, runner: Runner) -> Iterator[Any]:
        """Perform each step of the operation; yield what it emits."""
        try:
            for step in runner:
                if isinstance(step, Emit):
                    yield step.value
                    continue
                try:
                    runner.succeed(self._perform(step))
                except Exception as error:
                    runner.fail(error)
        finally:
            for opened in runner.close():
                opened.response.close()

    def _perform(self, step: Open | Next | Drain | Close | Sleep) -> Any:
        if isinstance(step, Open):
            response = self._http.send(step.request, stream=True)
            chunks = response.iter_lines() if step.lines else response.iter_bytes()
            return Opened(response, chunks)
        if isinstance(step, Next):
            return next(step.opened.iterator, None)
        if isinstance(step, Drain):
            step.opened.response.read()
        if isinstance(step, Drain | Close):
            return step.opened.response.close()
        return self._sleep(step.seconds)

    def _download(self, url: str, path: Path) -> Path:
        return self._run(self._save(url, path))
