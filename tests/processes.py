"""Run framegate as a real process on loopback (for restart, CLI and README tests)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import POSTGRES_ADMIN_DSN, pg_admin
from tests.waiting import wait_until_sync

FRAMEGATE = shutil.which("framegate", path=str(Path(sys.executable).parent)) or "framegate"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def throwaway_database(backend: str) -> Iterator[str]:
    """'' (SQLite in the data dir) or a fresh PostgreSQL database dropped afterwards."""
    if backend != "postgresql":
        yield ""
        return
    name = f"framegate_proc_{secrets.token_hex(6)}"

    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def environment(data_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEGATE_")}
    env.update(
        FRAMEGATE_DATA_DIR=str(data_dir),
        FRAMEGATE_DATABASE_URL=database_url,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    env.update(extra)
    return env


def cli_json(env: dict[str, str], *args: str) -> Any:
    done = subprocess.run(
        [FRAMEGATE, *args, "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


class Server:
    def __init__(self, env: dict[str, str], port: int, log: Path, *args: str) -> None:
        """``args``: more `framegate serve` options (e.g. --with-worker)."""
        self.env, self.port, self.log, self.args = env, port, log, args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [FRAMEGATE, "serve", "--host", "127.0.0.1", "--port", str(self.port), *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = self.process

        def healthy() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until_sync(
            healthy, timeout, lambda: f"the server: {self.log.read_text()[-3000:]}", interval=0.1
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks run, exactly like a crashed machine."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
