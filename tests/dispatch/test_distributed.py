"""Distributed dispatch with real processes on one PostgreSQL: an API node that runs no
engine, `framegate worker` processes fed by Procrastinate jobs, and what survives a worker's
SIGKILL, the loss of its database connections and a SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dispatch.distributed_helpers import (
    LONG_CLIP,
    MEDIUM_CLIP,
    SMALL_CLIP,
    SMALL_IMAGE,
    Deployment,
    check_video,
    deployment,
    distributed_environment,
)
from tests.processes import FRAMEGATE, free_port
from tests.waiting import wait_until_sync

pytestmark = pytest.mark.slow


def available(client: httpx.Client) -> dict[str, bool]:
    models = client.get("/v1/models").json()["data"]
    return {m["id"]: m["available"] for m in models if m["engine"] == "preview"}


def stays(check: Callable[[], bool], seconds: float, what: Callable[[], str]) -> None:
    """A bounded negative check: ``check()`` must hold at every look for ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert check(), what()
        # A fixed pause on purpose: this proves that nothing happens for a while.
        time.sleep(0.2)


def wait_processing(cluster: Deployment, pid: int, timeout: float = 30) -> list[dict[str, Any]]:
    """The tasks worker process ``pid`` holds, once it holds one."""
    return wait_until_sync(
        lambda: cluster.db.processing_by(pid),
        timeout,
        lambda: (
            f"worker {pid} to process a task; unfinished: {cluster.db.unfinished()}\n"
            f"{cluster.logs()}"
        ),
        interval=0.02,
    )


def test_api_node_queues_until_workers_run_the_tasks(tmp_path: Path) -> None:
    with deployment(tmp_path) as cluster, cluster.client() as client:
        ids = [cluster.submit(client, SMALL_CLIP)["id"] for _ in range(3)]
        assert available(client) == {"preview": False, "preview-image": False}

        def all_queued() -> bool:
            return all(cluster.task(client, i)["status"] == "queued" for i in ids)

        stays(all_queued, 2.0, lambda: f"the API node alone ran a task\n{cluster.logs()}")

        for _ in range(2):
            cluster.start_worker(cluster.worker("--concurrency", "1"))
        tasks = cluster.wait_terminal(client, ids, timeout=60)
        for task in tasks.values():
            assert task["status"] == "completed", f"{task}\n{cluster.logs()}"
            assert task["attempts"] == 1, task
            check_video(client, task)
        wait_until_sync(
            lambda: available(client) == {"preview": True, "preview-image": True},
            15,
            lambda: f"/v1/models to list the workers' routes: {available(client)}",
        )
        cluster.check_settled(client, tasks)


def test_worker_takes_only_the_routes_it_serves(tmp_path: Path) -> None:
    with (
        deployment(tmp_path, FRAMEGATE_IMAGE_SYNC_TIMEOUT_SECONDS="30") as cluster,
        cluster.client() as client,
    ):
        cluster.start_worker(cluster.worker("--routes", "preview-image", name="images"))
        video = cluster.submit(client, SMALL_CLIP)
        # The API node answers an image request once a worker has made it.
        image = client.post("/v1/images/generations", json=SMALL_IMAGE)
        assert image.status_code == 200, f"{image.text}\n{cluster.logs()}"
        picture = client.get(image.json()["data"][0]["url"])
        assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")

        def video_queued() -> bool:
            return cluster.db.task(video["id"])["status"] == "queued"

        stays(video_queued, 3.0, lambda: f"the image worker took a video\n{cluster.logs()}")
        wait_until_sync(
            lambda: available(client) == {"preview": False, "preview-image": True},
            15,
            lambda: f"/v1/models to list the image route only: {available(client)}",
        )

        cluster.start_worker(cluster.worker("--routes", "preview", name="videos"))
        tasks = cluster.wait_terminal(client, [video["id"], image.json()["task_id"]], 60)
        done = tasks[video["id"]]
        assert done["status"] == "completed", f"{done}\n{cluster.logs()}"
        check_video(client, done)
        cluster.check_settled(client, tasks)


def test_worker_sigkilled_ten_times_loses_no_task_and_no_credit(tmp_path: Path) -> None:
    with (
        deployment(
            tmp_path,
            credits=1000,
            FRAMEGATE_TASK_LEASE_SECONDS="2",
            FRAMEGATE_REAPER_INTERVAL_SECONDS="1",
            FRAMEGATE_TASK_MAX_ATTEMPTS="10",
        ) as cluster,
        cluster.client() as client,
    ):
        # One slot: the survivor cannot take all of a wave below before the victim does.
        survivor = cluster.worker("--concurrency", "1", name="survivor")
        victim = cluster.worker("--concurrency", "2", name="victim")
        cluster.start_worker(survivor)
        ids: list[str] = []
        kills: list[tuple[str, int]] = []
        for cycle in range(10):
            cluster.start_worker(victim)
            # A wave of three once the victim is up: two renders of a second or more
            # (one is the full 1080p clip every third wave) and a small one. The
            # survivor's one slot takes one render, so the victim gets work.
            first = LONG_CLIP if cycle % 3 == 0 else MEDIUM_CLIP
            for body in (first, MEDIUM_CLIP, SMALL_CLIP):
                ids.append(cluster.submit(client, body)["id"])
            # At once: its other slot is often between taking a job and claiming the
            # task then, which only the stalled-job retry recovers (30 s on; the next test
            # makes that case alone).
            held = wait_processing(cluster, victim.pid)
            victim.kill()
            kills += [(task["id"], victim.pid) for task in held]
        cluster.start_worker(victim)
        assert len(ids) == 30 and len(kills) >= 10

        tasks = cluster.wait_terminal(client, ids, timeout=120)
        assert not cluster.db.unfinished(), cluster.logs()
        for task in tasks.values():
            assert task["status"] in {"completed", "failed"}, f"{task}\n{cluster.logs()}"
            if task["status"] == "failed":
                assert task["error"]["code"] == "worker_lost", task
        for task_id, pid in kills:
            # The killed attempt counted and a later one, elsewhere, finished the task
            # (unless it finished there just before the kill landed).
            row = cluster.db.task(task_id)
            if row["status"] == "completed" and f":{pid}:" not in row["worker_id"]:
                assert row["attempts"] >= 2, row
        retried = [
            t
            for t in tasks.values()
            if t["status"] == "completed" and t["attempts"] >= 2 and t["model"] == "preview"
        ]
        assert retried, f"no killed task was completed by a later attempt\n{cluster.logs()}"
        for task in retried[:3]:
            check_video(client, task)
        cluster.check_settled(client, tasks)
        assert survivor.running(), survivor.tail()


def test_job_of_a_worker_killed_before_its_claim_is_not_lost(tmp_path: Path) -> None:
    with (
        deployment(tmp_path, FRAMEGATE_REAPER_INTERVAL_SECONDS="1") as cluster,
        cluster.client() as client,
    ):
        task_id = cluster.submit(client, SMALL_CLIP)["id"]
        # What a worker SIGKILLed between fetching the job and claiming the task leaves
        # (the SIGKILL loop above hits it in most runs, among other cases): the job taken
        # ('doing') by a Procrastinate worker whose heartbeat then stopped, the task still
        # queued at attempt 0. Made here with Procrastinate's own SQL functions, the
        # heartbeat already past the stalled-worker delay.
        db = cluster.db
        (registered,) = db.rows("SELECT worker_id FROM procrastinate_register_worker_v1()")
        dead = registered["worker_id"]
        (job,) = db.rows(
            "SELECT id, args FROM procrastinate_fetch_job_v2(ARRAY['route:preview'], %s)", dead
        )
        assert job["args"] == {"task_id": task_id}, job
        db.rows(
            "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour' "
            "WHERE id = %s",
            dead,
        )
        assert db.task(task_id)["status"] == "queued"

        cluster.start_worker(cluster.worker("--concurrency", "1"))
        tasks = cluster.wait_terminal(client, [task_id], timeout=30)
        assert tasks[task_id]["status"] == "completed", f"{tasks}\n{cluster.logs()}"
        assert tasks[task_id]["attempts"] == 1, tasks
        cluster.check_settled(client, tasks)


def test_worker_survives_losing_its_database_connections(tmp_path: Path) -> None:
    with (
        deployment(
            tmp_path,
            FRAMEGATE_TASK_LEASE_SECONDS="2",
            FRAMEGATE_REAPER_INTERVAL_SECONDS="1",
            FRAMEGATE_TASK_MAX_ATTEMPTS="10",
        ) as cluster,
        cluster.client() as client,
    ):
        worker = cluster.worker("--concurrency", "2")
        cluster.start_worker(worker)
        long = cluster.submit(client, LONG_CLIP)
        (held,) = wait_processing(cluster, worker.pid)
        # Its Procrastinate worker (the row its heartbeat updates), through the task's job.
        (job,) = cluster.db.rows(
            "SELECT worker_id FROM procrastinate_jobs WHERE id = %s",
            int(held["worker_id"].rsplit("/j", 1)[1]),
        )
        backends = cluster.db.backends_of(worker.pid)
        # Its SQLAlchemy pool, Procrastinate's pool and its listener at least.
        assert len(backends) >= 3, backends
        (now,) = cluster.db.rows("SELECT now() AS at")
        assert all(cluster.db.terminate([b["pid"] for b in backends])), backends
        # Submitted after the loss: only a worker that reconnected (its Procrastinate
        # listener or polling, its sessions) can take them.
        later = [cluster.submit(client, SMALL_CLIP)["id"] for _ in range(2)]
        tasks = cluster.wait_terminal(client, [long["id"], *later], timeout=90)
        for task in tasks.values():
            assert task["status"] == "completed", f"{task}\n{cluster.logs()}"
        for task_id in later:
            assert f":{worker.pid}:" in cluster.db.task(task_id)["worker_id"]
        check_video(client, tasks[long["id"]])
        cluster.check_settled(client, tasks)
        # Procrastinate's heartbeat (every 10 s) got through too: a failed one stops it.
        wait_until_sync(
            lambda: (
                cluster.db.rows(
                    "SELECT 1 FROM procrastinate_workers WHERE id = %s AND last_heartbeat > %s",
                    job["worker_id"],
                    now["at"],
                )
                or not worker.running()
            ),
            20,
            lambda: f"a Procrastinate heartbeat after the loss\n{cluster.logs()}",
        )
        assert worker.running(), f"the worker exited\n{cluster.logs()}"
        # It works on new connections.
        fresh = {b["pid"] for b in cluster.db.backends_of(worker.pid)}
        assert fresh and not fresh & {b["pid"] for b in backends}, (fresh, backends)


def test_sigterm_hands_the_running_task_back_without_using_an_attempt(tmp_path: Path) -> None:
    with (
        deployment(
            tmp_path,
            FRAMEGATE_WORKER_SHUTDOWN_SECONDS="1",
            # Recovery must not come from the reaper: the hand back does it at once.
            FRAMEGATE_TASK_LEASE_SECONDS="600",
        ) as cluster,
        cluster.client() as client,
    ):
        first = cluster.worker("--concurrency", "1", name="first")
        cluster.start_worker(first)
        task_id = cluster.submit(client, LONG_CLIP)["id"]
        (held,) = wait_processing(cluster, first.pid)
        assert held["attempts"] == 1, held
        # Some frames in, far from done (it takes seconds): the grace period of one
        # second ends mid-render.
        wait_until_sync(
            lambda: any(t["progress"] > 0 for t in cluster.db.processing_by(first.pid)),
            30,
            lambda: f"the render to make progress\n{cluster.logs()}",
        )
        first.send(signal.SIGTERM)
        assert first.process is not None
        try:
            code = first.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the worker ignored SIGTERM\n{cluster.logs()}") from None
        assert code == 0, f"exit code {code}\n{cluster.logs()}"
        # hand_back sets attempts to the claimed attempt minus one: back to 0.
        row = cluster.db.task(task_id)
        assert (row["status"], row["attempts"], row["worker_id"]) == ("queued", 0, None), (
            f"{row}\n{cluster.logs()}"
        )

        second = cluster.worker("--concurrency", "1", name="second")
        cluster.start_worker(second)
        tasks = cluster.wait_terminal(client, [task_id], timeout=90)
        task = tasks[task_id]
        assert task["status"] == "completed", f"{task}\n{cluster.logs()}"
        # The interrupted run did not count: the second claim made it 1 again.
        assert task["attempts"] == 1, task
        assert f":{second.pid}:" in cluster.db.task(task_id)["worker_id"]
        check_video(client, task)
        cluster.check_settled(client, tasks)


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_distributed_mode_refuses_sqlite(tmp_path: Path, command: str) -> None:
    env = distributed_environment(tmp_path / "data", "")  # "": SQLite in the data dir
    args = ["--host", "127.0.0.1", "--port", str(free_port())] if command == "serve" else []
    done = subprocess.run(
        [FRAMEGATE, command, *args], env=env, capture_output=True, text=True, timeout=60
    )
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 2, output
    assert len(output.splitlines()) == 1, output
    assert "FRAMEGATE_DATABASE_URL" in output, output
    assert output.startswith("error:"), output
