"""Real processes of a distributed deployment on loopback: one API node (`framegate serve`
with FRAMEGATE_DISPATCH=distributed), `framegate worker` processes, and direct reads of the
shared PostgreSQL database (a task's `worker_id` is not in the API)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import httpx
import psutil
import psycopg
from psycopg.rows import dict_row

from tests.processes import FRAMEGATE, Server, cli_json, environment, free_port, throwaway_database
from tests.waiting import wait_until_sync

# 1080p, 10 s at 30 fps: about 5 s of rendering alone on two cores, longer beside other
# work, so a signal sent once it is processing lands mid-render (as in test_restart.py).
LONG_CLIP = {"model": "preview", "prompt": "long", "duration": 10, "size": "1920x1080", "fps": 30}
# 720p, 3 s: about 0.6 s alone, a second or more beside other renders.
MEDIUM_CLIP = {"model": "preview", "prompt": "medium", "duration": 3, "size": "1280x720"}
SMALL_CLIP = {"model": "preview", "prompt": "small", "duration": 1, "size": "64x64"}
SMALL_IMAGE = {"model": "preview-image", "prompt": "an image", "size": "64x64"}

TERMINAL = {"completed", "failed", "cancelled"}
LOG_TAIL = 4000


def distributed_environment(data_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    """An environment for every process of one deployment (they share the data directory,
    hence the signing secret and the stored outputs, as they would share a bucket)."""
    return environment(
        data_dir,
        database_url,
        FRAMEGATE_DISPATCH="distributed",
        # The API node re-reads the live workers this often: /v1/models follows within it.
        FRAMEGATE_WORKER_HEARTBEAT_SECONDS="1",
        # Plan limits are not under test: every test's tasks may be unfinished at once,
        # and polling is not refused.
        FRAMEGATE_DEFAULT_MAX_CONCURRENT_VIDEOS="100",
        FRAMEGATE_DEFAULT_MAX_CONCURRENT_IMAGES="100",
        FRAMEGATE_DEFAULT_REQUESTS_PER_MINUTE="100000",
        **extra,
    )


class WorkerProcess:
    """One `framegate worker` process, restartable; every run appends to the same log."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.env, self.log, self.args = env, log, args
        self.process: subprocess.Popen[bytes] | None = None
        self.pids: list[int] = []

    @property
    def pid(self) -> int:
        assert self.process is not None, "the worker was never started"
        return self.process.pid

    def start(self) -> None:
        with self.log.open("ab") as log:
            log.write(
                f"=== framegate worker {' '.join(self.args)} (run {len(self.pids) + 1})\n".encode()
            )
            log.flush()
            self.process = subprocess.Popen(
                [FRAMEGATE, "worker", *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pids.append(self.process.pid)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def send(self, signum: signal.Signals) -> None:
        if self.running():
            assert self.process is not None
            os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks run, exactly like a crashed machine."""
        if self.running():
            assert self.process is not None
            self.send(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.running():
            assert self.process is not None
            self.send(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-LOG_TAIL:] if self.log.exists() else ""


class Database:
    """Direct reads (and the odd administrative statement) on the deployment's database."""

    def __init__(self, database_url: str) -> None:
        self.dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
        self._connection: psycopg.Connection[dict[str, Any]] | None = None

    @property
    def connection(self) -> psycopg.Connection[dict[str, Any]]:
        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(self.dsn, autocommit=True, row_factory=dict_row)
        return self._connection

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()

    def processing_by(self, pid: int) -> list[dict[str, Any]]:
        """Tasks a worker process holds now: its worker ids are ``host:pid:nonce/j<job>``."""
        return self.rows(
            "SELECT id, attempts, progress, worker_id FROM tasks "
            "WHERE status = 'processing' AND worker_id LIKE %s",
            f"%:{pid}:%",
        )

    def worker_registered(self, pid: int) -> bool:
        """The process's heartbeat row exists (written just before it starts taking jobs)."""
        return bool(self.rows("SELECT 1 FROM workers WHERE id LIKE %s", f"%:{pid}:%"))

    def task(self, task_id: str) -> dict[str, Any]:
        (row,) = self.rows(
            "SELECT id, status, attempts, worker_id, error_code FROM tasks WHERE id = %s", task_id
        )
        return row

    def unfinished(self) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT id, status, attempts, worker_id FROM tasks "
            "WHERE status IN ('queued', 'processing') ORDER BY created_at"
        )

    def jobs_of(self, task_ids: list[str]) -> list[dict[str, Any]]:
        """The Procrastinate jobs that name these tasks, with the workers they went to."""
        return self.rows(
            "SELECT id, status, args->>'task_id' AS task_id, worker_id, queue_name, "
            "(SELECT last_heartbeat FROM procrastinate_workers w WHERE w.id = j.worker_id) "
            "AS worker_heartbeat FROM procrastinate_jobs j "
            "WHERE args->>'task_id' = ANY(%s) ORDER BY id",
            task_ids,
        )

    def backends_of(self, pid: int) -> list[dict[str, Any]]:
        """The PostgreSQL backends serving process ``pid``'s connections.

        Each TCP connection the process holds to the server has a local (client) port that
        no other socket on this host has at the same time; pg_stat_activity records that
        port as the backend's client_port. Matching on it picks exactly the process's
        connections (its SQLAlchemy pool, Procrastinate's pool and listener, the
        cluster bus), never the API node's, nor this test's own."""
        server_port = int(self.connection.info.port)
        ports = [
            c.laddr.port
            for c in psutil.Process(pid).net_connections(kind="tcp")
            if c.raddr and c.raddr.port == server_port
        ]
        if not ports:
            return []
        return self.rows(
            "SELECT pid, client_port, application_name, state, wait_event_type, wait_event, "
            "left(query, 200) AS query FROM pg_stat_activity "
            "WHERE datname = current_database() AND client_port = ANY(%s) "
            "AND pid <> pg_backend_pid()",
            ports,
        )

    def terminate(self, backend_pids: list[int]) -> list[bool]:
        return [
            r["terminated"]
            for r in self.rows(
                "SELECT pg_terminate_backend(pid) AS terminated FROM unnest(%s::int[]) AS pid",
                backend_pids,
            )
        ]


@dataclass
class Deployment:
    """One API node, any number of workers, one account; ``logs()`` for failure messages."""

    env: dict[str, str]
    tmp_path: Path
    api: Server
    db: Database
    account: dict[str, Any]
    initial_credits: int
    workers: list[WorkerProcess] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.account['api_key']}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.api.url, headers=self.headers, timeout=30)

    def worker(
        self, *args: str, name: str | None = None, env: dict[str, str] | None = None
    ) -> WorkerProcess:
        """A worker process (not started yet); killed when the deployment ends."""
        name = name or f"worker-{len(self.workers) + 1}"
        worker = WorkerProcess(env or self.env, self.tmp_path / f"{name}.log", *args)
        self.workers.append(worker)
        return worker

    def start_worker(self, worker: WorkerProcess, timeout: float = 60) -> None:
        """Start ``worker`` and wait until it has registered (it takes jobs right after)."""
        worker.start()
        pid = worker.pid

        def registered() -> bool:
            if not worker.running():
                raise AssertionError(f"the worker exited at start:\n{worker.tail()}")
            return self.db.worker_registered(pid)

        wait_until_sync(
            registered, timeout, lambda: f"worker {pid} to register\n{self.logs()}", interval=0.05
        )

    def logs(self) -> str:
        parts = [f"--- API node ({self.api.log.name}):\n{_tail(self.api.log)}"]
        parts += [f"--- {w.log.name} (pids {w.pids}):\n{w.tail()}" for w in self.workers]
        return "\n".join(parts)

    def submit(self, client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
        path = "/v1/async/videos/generations"
        response = client.post(path, json=body)
        assert response.status_code == 202, f"{response.status_code} {response.text}\n{self.logs()}"
        task: dict[str, Any] = response.json()
        return task

    def task(self, client: httpx.Client, task_id: str) -> dict[str, Any]:
        response = client.get(f"/v1/tasks/{task_id}")
        assert response.status_code == 200, response.text
        task: dict[str, Any] = response.json()
        return task

    def wait_terminal(
        self, client: httpx.Client, task_ids: list[str], timeout: float
    ) -> dict[str, dict[str, Any]]:
        """Every task, as the API shows it, once all are finished (awaited in the database,
        which the API node reads within FRAMEGATE_READ_CACHE_SECONDS)."""

        def unfinished() -> list[dict[str, Any]]:
            return self.db.rows(
                "SELECT id, status, attempts, worker_id FROM tasks "
                "WHERE id = ANY(%s) AND status IN ('queued', 'processing')",
                task_ids,
            )

        wait_until_sync(
            lambda: not unfinished(),
            timeout,
            lambda: (
                f"{len(task_ids)} tasks to finish; unfinished: {unfinished()}; their "
                f"jobs: {self.db.jobs_of([t['id'] for t in unfinished()])}\n{self.logs()}"
            ),
            interval=0.1,
        )
        finished: dict[str, dict[str, Any]] = {}
        for task_id in task_ids:
            finished[task_id] = wait_until_sync(
                lambda task_id=task_id: _if_terminal(self.task(client, task_id)),
                10,
                f"the API to show task {task_id} finished",
                interval=0.1,
            )
        return finished

    def ledger(self, client: httpx.Client) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100}
            if after:
                params["after"] = after
            page = client.get("/v1/credits/ledger", params=params).json()
            entries += page["data"]
            if not page["has_more"]:
                return entries
            after = page["next_cursor"]

    def check_settled(self, client: httpx.Client, tasks: dict[str, dict[str, Any]]) -> None:
        """The money invariants of finished tasks: one hold each and exactly one of capture
        (completed) or release (failed, refunded); nothing held; the balance is what was
        granted less the captures."""
        ledger = self.ledger(client)
        kinds: dict[str, list[str]] = {task_id: [] for task_id in tasks}
        for entry in ledger:
            if entry["task_id"] is not None:
                assert entry["task_id"] in kinds, f"a ledger entry of an unknown task: {entry}"
                kinds[entry["task_id"]].append(entry["kind"])
        for task_id, task in tasks.items():
            found = sorted(kinds[task_id])
            settled = "capture" if task["status"] == "completed" else "release"
            assert found == sorted(["hold", settled]), (
                f"task {task_id} ({task['status']}, attempts {task['attempts']}): ledger {found}\n"
                f"{self.logs()}"
            )
            if task["status"] == "failed":
                assert task["credits_refunded"] == task["credits_reserved"], task
        captured = sum(e["credits"] for e in ledger if e["kind"] == "capture")
        credits = client.get("/v1/credits").json()
        assert credits["held"] == 0, credits
        assert credits["available"] == self.initial_credits - captured, (credits, captured)
        assert sum(e["amount"] for e in ledger) == credits["available"], ledger


@contextmanager
def deployment(tmp_path: Path, credits: int = 1000, **extra: str) -> Iterator[Deployment]:
    """A throwaway PostgreSQL database, one account and a started API node (no worker);
    every process it started is SIGKILLed (its process group) when the block ends."""
    with throwaway_database("postgresql") as database_url:
        env = distributed_environment(tmp_path / "data", database_url, **extra)
        account = cli_json(
            env, "admin", "create-account", "--name", "cluster", "--credits", str(credits)
        )
        api = Server(env, free_port(), tmp_path / "api.log")
        db = Database(database_url)
        cluster = Deployment(
            env=env, tmp_path=tmp_path, api=api, db=db, account=account, initial_credits=credits
        )
        try:
            api.start()
            yield cluster
        finally:
            for worker in cluster.workers:
                worker.kill()
            api.kill()
            db.close()


def decode_mp4(data: bytes) -> tuple[int, int, int]:
    """(frames, width, height) of an MP4, by decoding every frame."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return frames, stream.width, stream.height


def check_video(client: httpx.Client, task: dict[str, Any]) -> None:
    """Download the task's MP4 through the API's file URL and decode all of it."""
    output = task["result"]["data"][0]
    response = client.get(output["url"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "video/mp4"
    frames, width, height = decode_mp4(response.content)
    assert (frames, width, height) == (output["num_frames"], output["width"], output["height"]), (
        output
    )


def _if_terminal(task: dict[str, Any]) -> dict[str, Any] | None:
    return task if task["status"] in TERMINAL else None


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-LOG_TAIL:] if path.exists() else ""
