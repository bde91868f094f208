"""Upstream vendor routes in a distributed deployment (real processes, real PostgreSQL, a
fake Kling API on loopback): a parked task waits for its next poll as a scheduled
Procrastinate job, holding no worker slot, and survives the death of the worker that
submitted it without being submitted upstream again; the route's circuit breaker is shared,
so failures seen by workers refuse submissions on an API node that ran none of them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dispatch.distributed_helpers import Deployment, decode_mp4, deployment
from tests.engines.vendors.common import FAKE_HOST
from tests.engines.vendors.fake_kling import FakeKling
from tests.waiting import wait_until_sync

ROUTE = "kling-v2"
KLING_CLIP = {"model": ROUTE, "prompt": "a lighthouse at dusk, waves below", "duration": 5}


@pytest.fixture
def kling() -> Iterator[FakeKling]:
    with FakeKling() as fake:
        yield fake


def vendor_environment(fake: FakeKling, **extra: str) -> dict[str, str]:
    env = {f"FRAMEGATE_{k.upper()}": str(v) for k, v in fake.settings_overrides().items()}
    env.update(
        # The fake and its result downloads listen on this loopback address.
        FRAMEGATE_ALLOW_PRIVATE_NETWORKS=f"{FAKE_HOST}/32",
        FRAMEGATE_VENDOR_POLL_SECONDS="0.2",
        FRAMEGATE_VENDOR_POLL_MAX_SECONDS="0.5",
        **extra,
    )
    return env


def scheduled_polls(cluster: Deployment, task_ids: list[str]) -> list[dict[str, Any]]:
    """The tasks' jobs waiting for a time in the future (their next poll)."""
    return cluster.db.rows(
        "SELECT args->>'task_id' AS task_id, scheduled_at FROM procrastinate_jobs "
        "WHERE args->>'task_id' = ANY(%s) AND status = 'todo' AND scheduled_at > now()",
        task_ids,
    )


def test_parked_vendor_tasks_hold_no_slot_and_outlive_their_worker(
    tmp_path: Path, kling: FakeKling
) -> None:
    # Every job needs 15 polls (3 s or more): long enough to see them all parked at once.
    kling.script("succeed", polls=15)
    with deployment(tmp_path, **vendor_environment(kling)) as cluster, cluster.client() as client:
        first = cluster.worker("--routes", ROUTE, "--concurrency", "1")
        cluster.start_worker(first)
        ids = [cluster.submit(client, KLING_CLIP)["id"] for _ in range(4)]
        # One slot, four jobs submitted upstream: each was let go once it was submitted.
        wait_until_sync(
            lambda: kling.submitted == 4,
            30,
            lambda: f"four submissions upstream (saw {kling.submitted})\n{cluster.logs()}",
        )
        wait_until_sync(
            lambda: len(scheduled_polls(cluster, ids)) >= 2,
            10,
            lambda: f"parked tasks waiting as scheduled jobs\n{cluster.db.jobs_of(ids)}",
            interval=0.02,
        )
        parked = cluster.db.rows(
            "SELECT id FROM tasks WHERE id = ANY(%s) AND status = 'processing' "
            "AND worker_id IS NULL AND engine_task_id IS NOT NULL",
            ids,
        )
        assert parked, "no task was parked between polls"

        # Every submission recorded (a worker killed between the vendor's answer and that
        # commit would leave a job the vendor has and framegate does not know of).
        def recorded() -> int:
            return len(
                cluster.db.rows(
                    "SELECT id FROM tasks WHERE id = ANY(%s) AND engine_task_id IS NOT NULL",
                    ids,
                )
            )

        wait_until_sync(lambda: recorded() == 4, 30, lambda: f"{recorded()} of 4 recorded")
        # The worker that submitted them dies; another one polls them to the end.
        first.kill()
        second = cluster.worker("--routes", ROUTE, "--concurrency", "1")
        cluster.start_worker(second)
        finished = cluster.wait_terminal(client, ids, timeout=120)
        assert {t["status"] for t in finished.values()} == {"completed"}, finished
        assert kling.submitted == 4, "a parked task was submitted upstream again"
        for task in finished.values():
            assert task["attempts"] == 1 and task["served_by"] == ROUTE, task
            url = task["result"]["data"][0]["url"]
            response = httpx.get(url, timeout=30)
            assert response.status_code == 200, response.text
            frames, width, height = decode_mp4(response.content)
            assert frames > 0 and width > 0 and height > 0
        cluster.check_settled(client, finished)


def test_breaker_opened_by_workers_refuses_submissions_on_the_api_node(
    tmp_path: Path, kling: FakeKling
) -> None:
    kling.script("fail", polls=1)
    extra = vendor_environment(
        kling, FRAMEGATE_BREAKER_FAILURES="2", FRAMEGATE_BREAKER_COOLDOWN_SECONDS="600"
    )
    with deployment(tmp_path, **extra) as cluster, cluster.client() as client:
        for _ in range(2):
            cluster.start_worker(cluster.worker("--routes", ROUTE, "--concurrency", "1"))
        ids = [cluster.submit(client, KLING_CLIP)["id"] for _ in range(2)]
        finished = cluster.wait_terminal(client, ids, timeout=60)
        assert {t["status"] for t in finished.values()} == {"failed"}, finished
        cluster.check_settled(client, finished)

        # The API node ran none of these tasks, yet it knows the route is failing.
        def health() -> dict[str, Any]:
            (model,) = [m for m in client.get("/v1/models").json()["data"] if m["id"] == ROUTE]
            return dict(model["health"])

        wait_until_sync(
            lambda: health()["state"] == "open",
            5,
            lambda: f"the API node to show the breaker open: {health()}\n{cluster.logs()}",
            interval=0.02,
        )
        assert health()["consecutive_failures"] == 2
        submitted = kling.submitted
        refused = client.post("/v1/async/videos/generations", json=KLING_CLIP)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "model_unhealthy"
        assert 0 < int(refused.headers["retry-after"]) <= 600
        assert kling.submitted == submitted
