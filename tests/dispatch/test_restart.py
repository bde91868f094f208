"""A task left processing by a SIGKILLed server ends completed, or failed and refunded."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.processes import Server, cli_json, environment, free_port, throwaway_database
from tests.waiting import wait_until_sync

pytestmark = pytest.mark.slow

# Big enough that the kill lands mid-render on any machine.
LONG_CLIP = {"model": "preview", "prompt": "long", "duration": 10, "size": "1920x1080", "fps": 30}
LONG_CLIP_PRICE = 40  # 10 s x 4 credits/s at 1080p
SHORT_CLIP = {"model": "preview", "prompt": "short", "duration": 1, "size": "64x64"}
SHORT_CLIP_PRICE = 1


def wait_status(client: httpx.Client, task_id: str, wanted: set[str], timeout: float) -> dict:
    def reached() -> dict | None:
        task: dict = client.get(f"/v1/tasks/{task_id}").json()
        return task if task["status"] in wanted else None

    return wait_until_sync(reached, timeout, f"task {task_id} to reach {wanted}", interval=0.02)


def test_killed_server_task_is_recovered_after_restart(backend: str, tmp_path: Path) -> None:
    with throwaway_database(backend) as database_url:
        env = environment(
            tmp_path / "data",
            database_url,
            FRAMEGATE_WORKER_CONCURRENCY="1",
            FRAMEGATE_TASK_LEASE_SECONDS="2",
            FRAMEGATE_REAPER_INTERVAL_SECONDS="0.5",
        )
        account = cli_json(env, "admin", "create-account", "--name", "crash", "--credits", "100")
        server = Server(env, free_port(), tmp_path / "server.log")
        server.start()
        headers = {"Authorization": f"Bearer {account['api_key']}"}
        try:
            with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
                submitted = client.post("/v1/async/videos/generations", json=LONG_CLIP)
                assert submitted.status_code == 202, submitted.text
                task_id = submitted.json()["id"]
                # With one worker busy, this one waits in the queue across the crash.
                queued = client.post("/v1/async/videos/generations", json=SHORT_CLIP).json()
                wait_status(client, task_id, {"processing"}, timeout=30)
                assert client.get(f"/v1/tasks/{queued['id']}").json()["status"] == "queued"
                server.kill()

            server.start()
            with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
                task = wait_status(client, task_id, {"completed", "failed"}, timeout=120)
                after_queue = wait_status(client, queued["id"], {"completed"}, timeout=120)
                credits = client.get("/v1/credits").json()
                ledger = client.get("/v1/credits/ledger?limit=100").json()["data"]
        finally:
            server.stop()

    assert after_queue["attempts"] == 1
    assert credits["held"] == 0
    if task["status"] == "completed":
        assert task["attempts"] == 2  # the killed attempt, then the one that finished
        assert credits["available"] == 100 - LONG_CLIP_PRICE - SHORT_CLIP_PRICE
    else:
        assert task["error"]["code"] == "worker_lost"
        assert credits["available"] == 100 - SHORT_CLIP_PRICE
        assert task["credits_refunded"] == LONG_CLIP_PRICE
    assert sum(e["amount"] for e in ledger) == credits["available"]
    assert len([e for e in ledger if e["task_id"] == task_id and e["kind"] == "hold"]) == 1


def test_clean_shutdown_hands_the_running_task_back(backend: str, tmp_path: Path) -> None:
    with throwaway_database(backend) as database_url:
        env = environment(
            tmp_path / "data",
            database_url,
            FRAMEGATE_WORKER_CONCURRENCY="1",
            FRAMEGATE_TASK_LEASE_SECONDS="600",  # recovery must not depend on the reaper
        )
        account = cli_json(env, "admin", "create-account", "--name", "stop", "--credits", "100")
        server = Server(env, free_port(), tmp_path / "server.log")
        server.start()
        headers = {"Authorization": f"Bearer {account['api_key']}"}
        try:
            with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
                task_id = client.post("/v1/async/videos/generations", json=LONG_CLIP).json()["id"]
                wait_status(client, task_id, {"processing"}, timeout=30)
                server.stop()  # SIGTERM: lifespan shutdown runs

            server.start()
            with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
                task = wait_status(client, task_id, {"completed", "failed"}, timeout=120)
        finally:
            server.stop()
    assert task["status"] == "completed", task
    assert task["attempts"] == 1  # the interrupted run did not use up an attempt
