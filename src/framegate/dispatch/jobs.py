"""How a queued task reaches a worker: the job queue of each dispatch mode.

The task row and its compare-and-set transitions stay the truth about a task; a job only
says "look at task X". Every transition that makes a task runnable (submit, retry, hand
back, fallback, an upstream poll coming due) enqueues in the same transaction:

- embedded: workers in this process claim from the task table; enqueueing wakes them once
  the transaction commits (an after-commit hook).
- distributed: one Procrastinate job per runnable state, inserted by Procrastinate's own
  SQL function inside the transaction that makes the task runnable (a transactional outbox:
  committed together or not at all, so a queued task is never without a job, and
  Procrastinate's insert trigger notifies the workers at commit). A job whose task is no
  longer queued (or due) at that attempt does nothing, so a duplicate is harmless.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from framegate.db import after_commit
from framegate.tasks.signals import TaskSignals

RUN_TASK = "framegate.run_task"
MAINTENANCE_QUEUE = "framegate:maintenance"
# Procrastinate notifies on the channel "procrastinate_queue_v1#<queue>", and PostgreSQL
# channel names end at 63 bytes: queue names stay within 40.
_QUEUE_BYTES = 40


class JobQueue(Protocol):
    async def enqueue(
        self, session: AsyncSession, task_id: str, route_id: str, *, at: datetime | None = None
    ) -> None:
        """Make ``task_id`` (served by ``route_id``) reach a worker once ``session``'s
        transaction commits; ``at``: not before then (an upstream task's next poll)."""
        ...


def route_queue(route_id: str) -> str:
    """The queue of a route's jobs: ``route:<id>``, shortened with a digest when long."""
    name = f"route:{route_id}"
    if len(name.encode()) <= _QUEUE_BYTES:
        return name
    digest = hashlib.sha256(route_id.encode()).hexdigest()[:10]
    head = name.encode()[: _QUEUE_BYTES - len(digest) - 1].decode(errors="ignore")
    return f"{head}~{digest}"


class EmbeddedQueue:
    """The in-process workers poll the task table; wake them when the work commits."""

    def __init__(self, signals: TaskSignals) -> None:
        self._signals = signals

    async def enqueue(
        self, session: AsyncSession, task_id: str, route_id: str, *, at: datetime | None = None
    ) -> None:
        if at is None:
            after_commit(session, self._signals.task_queued)


# procrastinate_defer_jobs_v1 is what Procrastinate's own `defer` runs (its queries.sql);
# called here through the session so that the job commits with the task's transition.
_DEFER = sa.text(
    "SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW("
    "CAST(:queue AS varchar), CAST(:task_name AS varchar), CAST(:priority AS integer), "
    "CAST(NULL AS text), CAST(NULL AS text), CAST(:args AS jsonb), "
    "CAST(:scheduled_at AS timestamptz))::procrastinate_job_to_defer_v1]))"
)


class ProcrastinateQueue:
    """Distributed mode: a Procrastinate job per runnable state, in the same transaction."""

    async def enqueue(
        self, session: AsyncSession, task_id: str, route_id: str, *, at: datetime | None = None
    ) -> None:
        await session.execute(
            _DEFER,
            {
                "queue": route_queue(route_id),
                "task_name": RUN_TASK,
                "priority": 0,
                "args": json.dumps({"task_id": task_id}),
                "scheduled_at": at,
            },
        )


def apply_procrastinate_schema(connection: Connection) -> None:
    """Create Procrastinate's tables, types and functions (its installed version's
    schema.sql) unless they exist; inside the migration's transaction."""
    from procrastinate.schema import SchemaManager

    exists = connection.execute(sa.text("SELECT to_regclass('procrastinate_jobs')")).scalar()
    if exists is not None:
        return
    # Several statements and $$-quoted bodies: the driver's simple query protocol, on the
    # migration's own connection (its transaction has begun with the query above).
    _execute_script(connection, SchemaManager.get_schema())


def drop_procrastinate_schema(connection: Connection) -> None:
    """Remove every Procrastinate object (the downgrade of apply_procrastinate_schema)."""
    _execute_script(
        connection,
        """
        DO $$
        DECLARE item record;
        BEGIN
          FOR item IN SELECT oid::regprocedure AS signature FROM pg_proc
                      WHERE proname LIKE 'procrastinate%' LOOP
            EXECUTE 'DROP FUNCTION IF EXISTS ' || item.signature || ' CASCADE';
          END LOOP;
          FOR item IN SELECT tablename FROM pg_tables
                      WHERE schemaname = current_schema() AND tablename LIKE 'procrastinate%' LOOP
            EXECUTE 'DROP TABLE IF EXISTS ' || quote_ident(item.tablename) || ' CASCADE';
          END LOOP;
          FOR item IN SELECT typname FROM pg_type JOIN pg_namespace ns ON ns.oid = typnamespace
                      WHERE nspname = current_schema() AND typname LIKE 'procrastinate%'
                        AND typtype IN ('e', 'c') AND typname NOT LIKE '\\_%' LOOP
            EXECUTE 'DROP TYPE IF EXISTS ' || quote_ident(item.typname) || ' CASCADE';
          END LOOP;
        END $$;
        """,
    )


def _execute_script(connection: Connection, script: str) -> None:
    driver: Any = connection.connection.driver_connection
    sa.util.await_only(driver.execute(script))
