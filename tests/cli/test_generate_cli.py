"""The SDK's client commands (`framegate generate`, `tasks`, `models`) against a live server."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import pytest

from tests.processes import FRAMEGATE, Server, cli_json, environment, free_port

pytestmark = pytest.mark.slow


@dataclass
class Live:
    server: Server
    env: dict[str, str]

    def key(self, credits: int = 1000) -> str:
        created = cli_json(
            self.env, "admin", "create-account", "--name", "cli", "--credits", str(credits)
        )
        return str(created["api_key"])

    def client(self, key: str, *args: str) -> subprocess.CompletedProcess[str]:
        """`framegate ARGS` as an API client of this server (key and URL in the environment)."""
        env = {**self.env, "FRAMEGATE_API_KEY": key, "FRAMEGATE_BASE_URL": self.server.url}
        return subprocess.run(
            [FRAMEGATE, *args], env=env, capture_output=True, text=True, timeout=120
        )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data_dir = tmp_path_factory.mktemp("cli-server")
    env = environment(data_dir, "", FRAMEGATE_WORKER_CONCURRENCY="2")
    server = Server(env, free_port(), data_dir / "server.log")
    server.start()
    try:
        yield Live(server, env)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def key(live: Live) -> str:
    return live.key()


def single_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), done.stderr
    return lines[0].lower()


def test_generate_saves_the_video_and_reports_it(live: Live, key: str, tmp_path: Path) -> None:
    out = tmp_path / "boat.mp4"
    done = live.client(
        key, "generate", "a boat", "--duration", "1", "--size", "160x96", "-o", str(out)
    )
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout
    task_id = re.search(r"task:\s+(\S+)", done.stdout)
    assert task_id is not None, done.stdout
    credits = re.search(r"credits used:\s+(\d+)", done.stdout)
    assert credits is not None and int(credits.group(1)) > 0, done.stdout
    with av.open(str(out)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 24
    assert (frames[0].width, frames[0].height) == (160, 96)

    shown = live.client(key, "tasks", "show", task_id.group(1))
    assert shown.returncode == 0, shown.stderr
    assert task_id.group(1) in shown.stdout
    assert "completed" in shown.stdout
    listed = live.client(key, "tasks", "list")
    assert listed.returncode == 0, listed.stderr
    assert task_id.group(1) in listed.stdout


def test_bad_key_is_one_error_line(live: Live, tmp_path: Path) -> None:
    done = live.client("fg_not_a_real_key", "generate", "a boat", "-o", str(tmp_path / "x.mp4"))
    assert "key" in single_error_line(done)
    assert not (tmp_path / "x.mp4").exists()


def test_bad_size_is_one_error_line(live: Live, key: str, tmp_path: Path) -> None:
    done = live.client(key, "generate", "a boat", "--size", "65x64", "-o", str(tmp_path / "x.mp4"))
    assert "size" in single_error_line(done)


def test_no_credits_is_one_error_line(live: Live, tmp_path: Path) -> None:
    broke = live.key(credits=0)
    done = live.client(
        broke, "generate", "a boat", "--duration", "1", "-o", str(tmp_path / "x.mp4")
    )
    assert "credits" in single_error_line(done)


def test_models_lists_preview(live: Live, key: str) -> None:
    done = live.client(key, "models")
    assert done.returncode == 0, done.stderr
    assert re.search(r"^preview\b", done.stdout, re.MULTILINE), done.stdout


def test_credits_and_estimate(live: Live) -> None:
    fresh = live.key(credits=500)
    balance = live.client(fresh, "credits")
    assert balance.returncode == 0, balance.stderr
    assert re.search(r"available:\s+500\b", balance.stdout), balance.stdout
    quote = live.client(fresh, "estimate", "--duration", "1", "--size", "160x96")
    assert quote.returncode == 0, quote.stderr
    assert re.search(r"credits:\s+\d+", quote.stdout), quote.stdout
    assert "160x96" in quote.stdout
