"""A live `framegate serve` per test module, and accounts on it, for the SDK tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.processes import Server, cli_json, environment, free_port


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
