"""Distributed mode across API nodes: state that used to live in one process travels between
real `framegate serve` processes (and a `framegate worker`) through PostgreSQL and Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
import redis

from tests.processes import FRAMEGATE, Server, cli_json, environment, free_port, throwaway_database
from tests.waiting import wait_until_sync

pytestmark = pytest.mark.slow

REDIS_URL = "redis://127.0.0.1:6379/15"


@contextmanager
def cluster(
    tmp_path: Path, nodes: int, **extra: str
) -> Iterator[tuple[dict[str, str], list[Server]]]:
    """A throwaway PostgreSQL database and ``nodes`` API nodes (distributed, no worker)."""
    with throwaway_database("postgresql") as database_url, ExitStack() as stack:
        env = environment(
            tmp_path / "data",
            database_url,
            FRAMEGATE_DISPATCH="distributed",
            FRAMEGATE_SECRET_KEY="s" * 48,
            **extra,
        )
        servers = []
        for index in range(nodes):
            server = Server(env, free_port(), tmp_path / f"node{index}.log")
            stack.callback(server.stop)
            server.start()
            servers.append(server)
        yield env, servers


@contextmanager
def worker(env: dict[str, str], log: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [FRAMEGATE, "worker", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_key_revoked_on_one_node_is_refused_by_another_at_once(tmp_path: Path) -> None:
    with cluster(tmp_path, 2) as (env, (a, b)):
        owner = cli_json(env, "admin", "create-account", "--name", "n", "--credits", "10")
        headers = bearer(owner["api_key"])
        with httpx.Client(timeout=10) as client:
            created = client.post(f"{a.url}/v1/keys", json={"name": "short"}, headers=headers)
            key = created.json()
            # Node B verifies (and caches) the key before it is revoked.
            assert (
                client.get(f"{b.url}/v1/credits", headers=bearer(key["secret"])).status_code == 200
            )
            revoked = client.post(f"{a.url}/v1/keys/{key['id']}/revoke", headers=headers)
            assert revoked.status_code == 200
            revoked_at = time.monotonic()
            statuses = []
            while time.monotonic() - revoked_at < 0.1:
                statuses.append(
                    client.get(f"{b.url}/v1/credits", headers=bearer(key["secret"])).status_code
                )
                if statuses[-1] == 401:
                    break
            assert statuses[-1] == 401, (statuses, b.log.read_text()[-2000:])


def test_a_stream_on_one_node_sees_progress_written_by_a_worker(tmp_path: Path) -> None:
    with cluster(tmp_path, 1) as (env, (api,)):
        owner = cli_json(env, "admin", "create-account", "--name", "s", "--credits", "100")
        headers = bearer(owner["api_key"])
        body = {"model": "preview", "prompt": "waves", "duration": 6, "size": "1280x720"}
        with (
            httpx.Client(timeout=60) as client,
            worker(env, tmp_path / "worker.log", "--routes", "preview"),
        ):
            task = client.post(f"{api.url}/v1/async/videos/generations", json=body, headers=headers)
            assert task.status_code == 202, task.text
            events: list[tuple[str, dict]] = []
            with client.stream(
                "GET", f"{api.url}/v1/tasks/{task.json()['id']}/events", headers=headers
            ) as stream:
                kind = ""
                for line in stream.iter_lines():
                    if line.startswith("event:"):
                        kind = line.split(":", 1)[1].strip()
                    elif line.startswith("data:"):
                        events.append((kind, json.loads(line.split(":", 1)[1])))
            statuses = [(k, e["status"], e["progress"], e.get("processing_ms")) for k, e in events]
            assert events[-1][1]["status"] == "completed", statuses
            # Progress between 0 and 100 came from the worker process, through PostgreSQL.
            assert any(k == "progress" and 0 < p < 100 for k, _, p, _ in statuses), statuses


def test_two_nodes_share_one_rate_limit(tmp_path: Path) -> None:
    store = redis.Redis.from_url(REDIS_URL)
    store.flushdb()
    try:
        with cluster(tmp_path, 2, FRAMEGATE_RATE_LIMIT_STORAGE_URL=REDIS_URL) as (env, (a, b)):
            owner = cli_json(env, "admin", "create-account", "--name", "r", "--credits", "10")
            cli_json(
                env,
                "admin",
                "set-plan",
                "tiny",
                "--max-concurrent-videos",
                "1",
                "--max-concurrent-images",
                "1",
                "--requests-per-minute",
                "4",
            )
            cli_json(env, "admin", "assign-plan", owner["account_id"], "tiny")
            headers = bearer(owner["api_key"])

            def statuses() -> list[int]:
                with httpx.Client(timeout=10) as client:
                    return [
                        client.get(f"{node.url}/v1/tasks", headers=headers).status_code
                        for node in (a, b, a, b, a, b)
                    ]

            # The plan change reaches both nodes' caches; then 4 requests a minute in all.
            seen = wait_until_sync(
                lambda: (s := statuses()) and 429 in s and s, 10, "the plan to apply"
            )
            assert seen.count(200) <= 4 and seen[-2:] == [429, 429], seen
    finally:
        store.flushdb()


def test_an_api_node_with_a_worker_serves_alone(tmp_path: Path) -> None:
    """`serve --with-worker`: a one-machine distributed deployment runs its own tasks."""
    with throwaway_database("postgresql") as database_url:
        env = environment(
            tmp_path / "data",
            database_url,
            FRAMEGATE_DISPATCH="distributed",
            FRAMEGATE_SECRET_KEY="s" * 48,
        )
        server = Server(env, free_port(), tmp_path / "node.log", "--with-worker")
        try:
            server.start()
            owner = cli_json(env, "admin", "create-account", "--name", "w", "--credits", "10")
            headers = bearer(owner["api_key"])
            body = {"model": "preview", "prompt": "one box", "duration": 1, "size": "64x64"}
            with httpx.Client(timeout=30) as client:
                task = client.post(
                    f"{server.url}/v1/async/videos/generations", json=body, headers=headers
                ).json()

                def finished() -> dict | None:
                    current = client.get(f"{server.url}/v1/tasks/{task['id']}", headers=headers)
                    state: dict = current.json()
                    return state if state["status"] in ("completed", "failed") else None

                done = wait_until_sync(finished, 60, lambda: server.log.read_text()[-2000:])
                assert done["status"] == "completed", done

                def listed() -> bool:
                    models = client.get(f"{server.url}/v1/models", headers=headers).json()
                    return bool({m["id"]: m["available"] for m in models["data"]}["preview"])

                # The node re-reads the live workers every FRAMEGATE_WORKER_HEARTBEAT_SECONDS.
                wait_until_sync(listed, 15, "preview listed as available", interval=0.2)
        finally:
            server.stop()


def test_a_task_cancelled_on_an_api_node_stops_on_its_worker(tmp_path: Path) -> None:
    """The cancel is a compare-and-set on the API node; the worker process sees it at its
    next lease renewal, stops the engine and gives its slot to the next task."""
    with cluster(tmp_path, 1) as (env, (api,)):
        owner = cli_json(env, "admin", "create-account", "--name", "c", "--credits", "100")
        headers = bearer(owner["api_key"])
        long = {
            "model": "preview",
            "prompt": "long",
            "duration": 10,
            "size": "1920x1080",
            "fps": 30,
        }
        small = {"model": "preview", "prompt": "next", "duration": 1, "size": "64x64"}
        log = tmp_path / "worker.log"
        with (
            httpx.Client(timeout=30) as client,
            worker(env, log, "--routes", "preview", "--concurrency", "1"),
        ):
            submit = f"{api.url}/v1/async/videos/generations"
            task = client.post(submit, json=long, headers=headers).json()

            def state(task_id: str) -> dict:
                found: dict = client.get(f"{api.url}/v1/tasks/{task_id}", headers=headers).json()
                return found

            wait_until_sync(
                lambda: state(task["id"])["progress"] > 0, 60, lambda: log.read_text()[-2000:]
            )
            cancelled = client.post(f"{api.url}/v1/tasks/{task['id']}/cancel", headers=headers)
            assert cancelled.json()["status"] == "cancelled", cancelled.text
            # The one slot comes free: a later task completes long before the 10 s clip would.
            after = client.post(submit, json=small, headers=headers).json()
            done = wait_until_sync(
                lambda: (s := state(after["id"]))["status"] == "completed" and s,
                60,
                lambda: log.read_text()[-2000:],
            )
            assert done["attempts"] == 1
            # Stopped, not rendered to the end and thrown away.
            assert f"task {task['id']} stopped" in log.read_text(), log.read_text()[-2000:]
            final = state(task["id"])
            assert final["status"] == "cancelled" and final["result"] is None, final
            credits = client.get(f"{api.url}/v1/credits", headers=headers).json()
            assert credits["held"] == 0, credits
