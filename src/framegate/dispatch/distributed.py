"""Distributed dispatch: `framegate worker` processes fed by Procrastinate, and the API
node's view of which routes some live worker serves.

A worker listens on the queues of the routes it serves (dispatch/jobs.py puts one job per
runnable task state there) and on the maintenance queue, whose periodic jobs (lease and
deadline reaper, retention, stalled jobs) Procrastinate defers once per
tick across the cluster. Each job claims its task with the lifecycle's compare-and-set, so
a job for a task that is no longer queued (cancelled, finished, claimed by another job)
does nothing. A worker that dies is noticed twice: its task's lease runs out (the reaper
retries or fails and refunds it) and its Procrastinate heartbeat stops (its job runs again,
which matters when it died before claiming its task).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import socket
from collections.abc import Set as AbstractSet
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import procrastinate
from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert

from framegate.catalog.schemas import ModelRoute
from framegate.db import transaction
from framegate.dispatch.jobs import MAINTENANCE_QUEUE, RUN_TASK, route_queue
from framegate.kit.cluster import asyncpg_dsn
from framegate.kit.ids import process_id
from framegate.kit.time import utcnow
from framegate.models import Worker

if TYPE_CHECKING:
    from framegate.runtime import Runtime

log = logging.getLogger(__name__)


# Procrastinate's workers beat every 10 s; one silent for this long is gone.
_STALLED_SECONDS = 30.0
_ORPHAN_SECONDS = 60.0
_ORPHANS = text(
    """
    SELECT t.id, COALESCE(t.upstream ->> 'route', t.model) FROM tasks t
    WHERE (t.status = 'queued' OR (t.status = 'processing' AND t.worker_id IS NULL))
      AND t.updated_at < :cutoff
      AND (t.status = 'queued' OR t.lease_expires_at < :cutoff)
      AND NOT EXISTS (
        SELECT 1 FROM procrastinate_jobs j
        WHERE j.status IN ('todo', 'doing') AND j.args ->> 'task_id' = t.id
      )
    LIMIT 100
    """
)


class RouteSelectionError(Exception):
    """`--routes` names nothing this machine can serve; the message is one line."""


def select_routes(runtime: Runtime, patterns: list[str] | None) -> list[ModelRoute]:
    """The routes a worker serves: those matching ``patterns`` (ids or globs such as
    ``wan-*``), or by default every route whose engine is available on this machine."""
    catalog, engines = runtime.catalog, runtime.engines
    routes = catalog.routes()
    if not patterns:
        chosen = [r for r in routes if engines.is_available(r.engine, r.settings)]
        if not chosen:
            raise RouteSelectionError("no route's engine is available on this machine")
        return chosen
    chosen = []
    for pattern in patterns:
        matched = [r for r in routes if fnmatch.fnmatchcase(r.id, pattern)]
        if not matched:
            known = ", ".join(sorted(r.id for r in routes))
            raise RouteSelectionError(f"--routes {pattern!r} matches no route (routes: {known})")
        for route in matched:
            if not engines.is_available(route.engine, route.settings):
                raise RouteSelectionError(
                    f"route {route.id!r} needs the {route.engine!r} engine, which is not "
                    "available on this machine"
                )
            if route not in chosen:
                chosen.append(route)
    return chosen


def _every(seconds: float) -> str:
    """A Procrastinate cron expression (seconds in the sixth field) for about this period."""
    if seconds < 60:
        return f"* * * * * */{max(1, round(seconds))}"
    if seconds < 3600:
        return f"*/{max(1, round(seconds / 60))} * * * *"
    return f"0 */{max(1, min(23, round(seconds / 3600)))} * * *"


class WorkerDirectory:
    """The API node's list of live workers' routes, re-read every heartbeat period."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._served: frozenset[str] = frozenset()
        self._task: asyncio.Task[None] | None = None

    def served(self) -> AbstractSet[str]:
        return self._served

    async def refresh(self) -> None:
        settings = self._runtime.settings
        since = utcnow() - timedelta(seconds=settings.worker_stale_seconds)
        async with self._runtime.read_sessionmaker() as session:
            rows = await session.execute(select(Worker.routes).where(Worker.last_seen_at >= since))
            self._served = frozenset(route for (routes,) in rows for route in routes)

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="worker-directory")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._runtime.settings.worker_heartbeat_seconds)
            try:
                await self.refresh()
            except Exception:
                log.exception("reading the live workers failed")


class ClusterWorker:
    """One worker process's Procrastinate worker over its routes' queues, its maintenance
    jobs and its row in the workers table."""

    def __init__(self, runtime: Runtime, routes: list[ModelRoute], concurrency: int) -> None:
        self.runtime = runtime
        self.routes = routes
        self.concurrency = concurrency
        self.instance_id = process_id()
        settings = runtime.settings
        self.app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(
                # libpq's form of the URL (ssl → sslmode, SQLAlchemy-only options dropped).
                conninfo=asyncpg_dsn(settings.resolved_database_url),
                min_size=1,
                max_size=concurrency + 3,
            )
        )
        self.runner = runtime.task_runner()
        self._register_tasks()

    @property
    def queues(self) -> list[str]:
        """The queues of the routes this worker serves (maintenance has its own worker)."""
        return sorted({route_queue(r.id) for r in self.routes})

    def _register_tasks(self) -> None:
        runtime, app = self.runtime, self.app
        settings = runtime.settings

        # A job that raised (the database away for a moment) is tried again; its claim
        # makes a second run of a job that did start harmless.
        @app.task(
            name=RUN_TASK,
            pass_context=True,
            retry=procrastinate.RetryStrategy(max_attempts=8, wait=1, exponential_wait=2),
        )
        async def run_task(context: procrastinate.JobContext, task_id: str) -> None:
            job_id = context.job.id if context.job else "?"
            worker_id = f"{self.instance_id}/j{job_id}"
            lifecycle = runtime.lifecycle
            task = await lifecycle.claim(worker_id, task_id) or await lifecycle.claim_due(
                worker_id, task_id
            )
            if task is None:
                return  # cancelled, finished, or taken by another job: nothing to do
            await self.runner.run(task, worker_id)

        @app.periodic(cron=_every(settings.reaper_interval_seconds), periodic_id="reap")
        @app.task(name="framegate.reap", queue=MAINTENANCE_QUEUE, queueing_lock="reap")
        async def reap(timestamp: int) -> None:
            await runtime.lifecycle.reap_expired()
            await runtime.lifecycle.expire_overdue()
            await self._retry_stalled_jobs()
            await self._enqueue_orphans()

        @app.periodic(cron=_every(settings.retention_sweep_seconds), periodic_id="retention")
        @app.task(name="framegate.retention", queue=MAINTENANCE_QUEUE, queueing_lock="retention")
        async def sweep(timestamp: int) -> None:
            await runtime.retention_sweeper().run_once()
            # Finished jobs are kept a day for inspection (`procrastinate` shell), then go.
            await app.job_manager.delete_old_jobs(
                nb_hours=24, include_failed=True, include_cancelled=True, include_aborted=True
            )

    async def _retry_stalled_jobs(self) -> None:
        """Jobs taken by workers whose Procrastinate heartbeat stopped run again: a worker
        may have died between taking the job and claiming its task (still queued). When it
        had claimed it, the claim fails and the job ends at once; the task itself is
        recovered through its lease (the reaper)."""
        manager = self.app.job_manager
        for job in await manager.get_stalled_jobs(seconds_since_heartbeat=_STALLED_SECONDS):
            log.warning("job %s of a stalled worker runs again (%s)", job.id, job.task_kwargs)
            await manager.retry_job(job)

    async def _enqueue_orphans(self) -> None:
        """A safety net: a task that has waited (queued, or parked past its poll) for a
        while with no pending job gets one. Jobs are inserted with the transitions, so this
        finds only tasks whose job was removed by hand or failed past its retries."""
        async with transaction(self.runtime.sessionmaker) as session:
            cutoff = utcnow() - timedelta(seconds=_ORPHAN_SECONDS)
            rows = await session.execute(_ORPHANS, {"cutoff": cutoff})
            for task_id, route in rows.all():
                log.warning("task %s had no pending job: enqueued again", task_id)
                await self.runtime.lifecycle.enqueue_id(session, task_id, route)

    async def _heartbeat(self) -> None:
        settings = self.runtime.settings
        while True:
            try:
                await self._beat()
            except Exception:
                log.exception("worker heartbeat failed")
            await asyncio.sleep(settings.worker_heartbeat_seconds)

    async def _beat(self) -> None:
        now = utcnow()
        values: dict[str, Any] = {
            "hostname": socket.gethostname(),
            "routes": [r.id for r in self.routes],
            "concurrency": self.concurrency,
            "last_seen_at": now,
        }
        statement = insert(Worker).values(id=self.instance_id, created_at=now, **values)
        statement = statement.on_conflict_do_update(index_elements=[Worker.id], set_=values)
        async with transaction(self.runtime.sessionmaker) as session:
            await session.execute(statement)

    async def _unregister(self) -> None:
        async with transaction(self.runtime.sessionmaker) as session:
            await session.execute(delete(Worker).where(Worker.id == self.instance_id))

    async def run(self, *, install_signal_handlers: bool = True) -> None:
        """Serve until stopped (SIGTERM/SIGINT, or this coroutine cancelled): running tasks
        get ``worker_shutdown_seconds`` to finish, then are handed back to the queue."""
        settings = self.runtime.settings
        await self._beat()
        heartbeat = asyncio.create_task(self._heartbeat(), name="worker-heartbeat")
        # Webhook deliveries are claimed row by row: every worker sends, each once.
        webhooks = self.runtime.webhook_delivery_job()
        await webhooks.start()
        log.info(
            "worker %s serving %s (concurrency %d)",
            self.instance_id,
            ", ".join(r.id for r in self.routes),
            self.concurrency,
        )
        options: dict[str, Any] = {
            # A job also arrives by NOTIFY at once; polling is the fallback.
            "fetch_job_polling_interval": 1.0,
            "abort_job_polling_interval": 1.0,
            "delete_jobs": "successful",
        }
        try:
            async with self.app.open_async():
                # Maintenance has a slot of its own: renders filling every task slot must
                # not hold up the reaper that recovers other workers' tasks.
                maintenance = asyncio.create_task(
                    self.app.run_worker_async(
                        queues=[MAINTENANCE_QUEUE],
                        name=f"{self.instance_id}/maintenance",
                        concurrency=1,
                        install_signal_handlers=False,
                        shutdown_graceful_timeout=5.0,
                        **options,
                    ),
                    name="maintenance-worker",
                )
                try:
                    await self.app.run_worker_async(
                        queues=self.queues,
                        name=self.instance_id,
                        concurrency=self.concurrency,
                        install_signal_handlers=install_signal_handlers,
                        shutdown_graceful_timeout=settings.worker_shutdown_seconds,
                        **options,
                    )
                finally:
                    maintenance.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await maintenance
        finally:
            await webhooks.stop()
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            with contextlib.suppress(Exception):
                await self._unregister()
