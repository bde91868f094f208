"""A live `framegate serve` per test module, accounts on it, and a fixture that runs one test
body against both the sync and the async client."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from framegate_client import AsyncFramegate, Framegate, Task

from tests.processes import Server, cli_json, environment, free_port


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every SDK test drives a real server process (or a clean virtualenv): slow."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.slow)


@dataclass
class Live:
    server: Server
    env: dict[str, str]

    @property
    def url(self) -> str:
        return self.server.url

    def account(self, credits: int = 1000) -> tuple[str, str]:
        """(account_id, api_key) of a fresh account."""
        created = cli_json(
            self.env, "admin", "create-account", "--name", "sdk", "--credits", str(credits)
        )
        return created["account_id"], created["api_key"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data_dir = tmp_path_factory.mktemp("sdk-server")
    env = environment(data_dir, "", FRAMEGATE_WORKER_CONCURRENCY="2")
    server = Server(env, free_port(), data_dir / "server.log")
    server.start()
    try:
        yield Live(server, env)
    finally:
        server.stop()


T = TypeVar("T")


class BlockingResource:
    """An ``AsyncFramegate`` resource called from synchronous test code: each coroutine is
    run to completion on the test's event loop, each async iterator collected."""

    def __init__(self, resource: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._resource, self._loop = resource, loop

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._resource, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            if inspect.isawaitable(result):
                return self._loop.run_until_complete(result)
            if isinstance(result, AsyncIterator):
                return iter(self._loop.run_until_complete(collect(result)))
            return result

        return call


async def collect(items: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in items]


class SDK:
    """One test body for both clients: ``sdk.tasks.list()`` blocks on either, and
    ``sdk.save(task, path)`` is ``task.save`` or ``await task.asave``."""

    def __init__(self, client: Framegate | AsyncFramegate, loop: asyncio.AbstractEventLoop):
        self.client, self._loop = client, loop

    def __getattr__(self, name: str) -> Any:
        resource = getattr(self.client, name)
        if isinstance(self.client, AsyncFramegate) and name != "webhooks":
            return BlockingResource(resource, self._loop)
        return resource

    def save(self, task: Task, path: Path) -> Path:
        if isinstance(self.client, AsyncFramegate):
            return self.loop_run(task.asave(path))
        return task.save(path)

    def loop_run(self, awaitable: Awaitable[T]) -> T:
        """Run a coroutine on the test's event loop."""
        return self._loop.run_until_complete(awaitable)


Connect = Callable[..., SDK]


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


@pytest.fixture(scope="module", params=["sync", "async"])
def connect(request: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop) -> Connect:
    """Build a client of the parametrized kind: ``connect(api_key=..., base_url=...)``.

    ``on_response`` is an httpx response hook (made async for the async client);
    ``no_sleep`` skips the waits between retries.
    """

    def build(
        *,
        on_response: Callable[[httpx.Response], None] | None = None,
        no_sleep: bool = False,
        **options: Any,
    ) -> SDK:
        if request.param == "sync":
            hooks = {"response": [on_response]} if on_response else {}
            client: Framegate | AsyncFramegate = Framegate(
                http_client=httpx.Client(timeout=30, event_hooks=hooks), **options
            )
            if no_sleep:
                client._sleep = lambda _seconds: None
        else:

            async def hook(response: httpx.Response) -> None:
                if on_response is not None:
                    on_response(response)

            client = AsyncFramegate(
                http_client=httpx.AsyncClient(timeout=30, event_hooks={"response": [hook]}),
                **options,
            )
            if no_sleep:

                async def skip(_seconds: float) -> None:
                    return None

                client._sleep = skip
        return SDK(client, loop)

    return build
