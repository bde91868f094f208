"""Distributed dispatch: task throughput over worker processes, and dispatch latency.

Usage::

    python benchmarks/distributed_dispatch.py [--workers 1,2,4,8] [--tasks-per-worker 8]
                                              [--task-seconds 2.0] [--latency-tasks 120]
                                              [--latency-workers 8] [--quick]

What it does, all on this machine and one PostgreSQL server (127.0.0.1:5432, user postgres):

1. Creates a throwaway database (dropped at the end), migrates it and builds an API node's
   runtime in this process (``Runtime.create`` with ``FRAMEGATE_DISPATCH=distributed``, no
   engines of its own; ``start_workers`` starts its directory of live workers, as
   ``framegate serve`` does), then creates an account through the account service.
2. Writes a catalog file (``FRAMEGATE_CATALOG_FILE``) with one route, ``wait``, served by
   the ``wait`` engine defined here: it only sleeps ``--task-seconds`` (2.0) per task, no
   CPU, and appends the task id and ``time.time()`` at its start to a file of its process.
3. For each worker count W in ``--workers``: starts W worker processes (this script with
   ``--worker``; each builds ``Runtime.create(settings, engines=<registry of the wait
   engine>)`` and runs ``ClusterWorker(runtime, [wait], concurrency=1).run()``, settings
   from the environment), waits until all W are registered with Procrastinate, submits
   W x ``--tasks-per-worker`` tasks one after the other through the service layer
   (``Runtime.tasks.submit_video`` with an ``AuthContext``, each in its own transaction,
   as the API's submit does; no HTTP) and measures tasks/s from the start of the first
   submit to the last task's ``completed_at``. Ratio to linear: tasks/s over W x the
   1-worker run's tasks/s, both measured in this run (also shown: over the ideal, W tasks
   per ``--task-seconds``).
4. With the ``--latency-workers`` (8) workers of the last run idle: submits
   ``--latency-tasks`` (120) tasks one at a time, each only while at least one worker is
   idle (fewer than W tasks processing, and at least 1.25 x task-seconds / W after the
   previous submit), and measures dispatch latency from the submit's commit (``time.time()``
   once ``session.commit()`` returned) to the engine's start (``time.time()`` in the worker
   process, same machine clock), p50 / p99 / max; also the part up to the task's claim
   (``started_at``, set by the claiming transaction).

Goals: throughput at least 0.9 x linear up to 8 workers; dispatch latency p99 at most
200 ms. It prints the tables with the machine it ran on and how busy its CPUs were (this
benchmark's processes, and everything else: PostgreSQL and any other work on the machine).

Every wait is bounded; every worker is stopped (SIGTERM, then SIGKILL of its process group)
on the way out, SIGTERM and Ctrl-C included, and each worker also exits by itself once this
process is gone or after ``--worker-max-seconds``. Only a SIGKILL of this process leaves its
database (``framegate_bench_*``) behind, to drop by hand. ``--keep DIR`` keeps the worker
logs and the engine's start times.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _cluster import (
    BenchEngine,
    add_worker_arguments,
    cluster_env,
    run_worker,
    video_request,
    worker_argv,
    write_catalog,
)
from _common import (
    LOAD_AFTER,
    LOAD_BEFORE,
    READY_TIMEOUT_S,
    Processes,
    exit_on_sigterm,
    in_workdir,
    load_average,
    machine_head,
    percentile_ms,
    throwaway_database,
)

if TYPE_CHECKING:
    from framegate.engines.base import GenerationRequest, ProgressCallback
    from framegate.keys.service import AuthContext
    from framegate.runtime import Runtime

ROUTE_ID = "wait"
ENGINE_NAME = "wait"
REQUEST = video_request(ROUTE_ID)
GOAL_LINEAR = 0.9
GOAL_P99_MS = 200.0
POLL_S = 0.05
SCRIPT = Path(__file__).resolve()
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- worker side


class WaitEngine(BenchEngine):
    """A local engine that only waits: ``asyncio.sleep(seconds)``, then a 16-byte "video".
    Appends ``task_id<TAB>time.time()`` at each start to ``log_path``."""

    name = ENGINE_NAME

    def __init__(self, seconds: float, log_path: Path) -> None:
        super().__init__(log_path)
        self.seconds = seconds

    async def work(self, request: GenerationRequest, progress: ProgressCallback) -> None:
        self.note(request.task_id)
        await asyncio.sleep(self.seconds)


def worker_main(args: argparse.Namespace) -> int:
    engine = WaitEngine(args.task_seconds, args.starts_dir / f"starts-{os.getpid()}.tsv")
    return run_worker(engine, ROUTE_ID, args.concurrency, args.parent_pid, args.worker_max_seconds)


# --------------------------------------------------------------------------- processes


class Cluster:
    """W worker processes of this script; always stopped by ``stop``."""

    def __init__(self, size: int, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.size = size
        self.argv = argv
        self.processes = Processes(env, log_dir)

    def start(self) -> None:
        for number in range(self.size):
            self.processes.start(f"worker-{self.size}-{number}", self.argv, f"worker {number}")

    def check_alive(self) -> None:
        self.processes.check_alive()

    def stop(self) -> None:
        """SIGTERM (Procrastinate's graceful stop), then SIGKILL of each process group."""
        self.processes.stop()


@contextlib.contextmanager
def running(cluster: Cluster) -> Iterator[Cluster]:
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


# --------------------------------------------------------------------------- measuring


@dataclass
class Submitted:
    task_id: str
    begin: float  # time.time() before submit_video
    committed: float  # time.time() once the commit returned


@dataclass
class ThroughputRun:
    workers: int
    tasks: int
    seconds: float
    completed: int
    statuses: dict[str, int]

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Latency:
    workers: int
    to_start: list[float]  # seconds, commit -> engine start
    to_claim: list[float]  # seconds, commit -> the claim's started_at
    commit: list[float]  # seconds, submit_video + commit
    missing: int


async def submit(runtime: Runtime, auth: AuthContext) -> Submitted:
    from framegate.tasks.schemas import VideoGenerationRequest

    body = VideoGenerationRequest(**REQUEST)
    begin = time.time()
    async with runtime.sessionmaker() as session:
        task = await runtime.tasks.submit_video(session, auth, body)
        await session.commit()
    return Submitted(task.id, begin, time.time())


async def task_rows(runtime: Runtime, ids: list[str]) -> dict[str, tuple[str, Any, Any]]:
    """status, started_at, completed_at by task id."""
    from sqlalchemy import select

    from framegate.models import Task

    async with runtime.read_sessionmaker() as session:
        rows = await session.execute(
            select(Task.id, Task.status, Task.started_at, Task.completed_at).where(Task.id.in_(ids))
        )
        return {row[0]: (str(row[1]), row[2], row[3]) for row in rows}


async def count_processing(runtime: Runtime) -> int:
    from sqlalchemy import func, select

    from framegate.models import Task

    async with runtime.read_sessionmaker() as session:
        value = await session.scalar(
            select(func.count()).select_from(Task).where(Task.status == "processing")
        )
        return int(value or 0)


async def procrastinate_worker_ids(runtime: Runtime) -> list[int]:
    from sqlalchemy import text

    async with runtime.read_sessionmaker() as session:
        rows = await session.execute(text("SELECT id FROM procrastinate_workers"))
        return [int(row[0]) for row in rows]


async def wait_ready(runtime: Runtime, cluster: Cluster, known: set[int]) -> None:
    """Until the W new workers are registered with Procrastinate (their listeners start
    right after), then half a second more."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        cluster.check_alive()
        fresh = set(await procrastinate_worker_ids(runtime)) - known
        if len(fresh) >= cluster.size:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(fresh)} of {cluster.size} workers ready after timeout")
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)


async def wait_finished(
    runtime: Runtime, cluster: Cluster, ids: list[str], timeout: float
) -> dict[str, tuple[str, Any, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        cluster.check_alive()
        rows = await task_rows(runtime, ids)
        if all(row[0] in ("completed", "failed", "cancelled") for row in rows.values()):
            return rows
        if time.monotonic() > deadline:
            return rows
        await asyncio.sleep(POLL_S)


async def measure_throughput(
    runtime: Runtime, auth: AuthContext, cluster: Cluster, tasks: int, task_seconds: float
) -> ThroughputRun:
    from framegate.kit.time import as_utc

    begin = time.time()
    ids = [(await submit(runtime, auth)).task_id for _ in range(tasks)]
    ideal = tasks / cluster.size * task_seconds
    rows = await wait_finished(runtime, cluster, ids, timeout=3 * ideal + 60)
    statuses: dict[str, int] = {}
    for status, _, _ in rows.values():
        statuses[status] = statuses.get(status, 0) + 1
    ends = [as_utc(row[2]).timestamp() for row in rows.values() if row[0] == "completed"]
    completed = len(ends)
    seconds = (max(ends) - begin) if completed == tasks else float("nan")
    return ThroughputRun(cluster.size, tasks, seconds, completed, statuses)


def read_starts(starts_dir: Path) -> dict[str, float]:
    starts: dict[str, float] = {}
    for path in starts_dir.glob("starts-*.tsv"):
        for line in path.read_text().splitlines():
            task_id, _, stamp = line.partition("\t")
            if task_id and stamp:
                starts.setdefault(task_id, float(stamp))
    return starts


async def measure_latency(
    runtime: Runtime,
    auth: AuthContext,
    cluster: Cluster,
    count: int,
    task_seconds: float,
    starts_dir: Path,
) -> Latency:
    from framegate.kit.time import as_utc

    gap = 1.25 * task_seconds / cluster.size
    submitted: list[Submitted] = []
    previous = 0.0
    for _ in range(count):
        deadline = time.monotonic() + 10 * task_seconds + 30
        # Submit only while some worker is idle, and spread out.
        while time.monotonic() < previous + gap or await count_processing(runtime) >= (
            cluster.size
        ):
            cluster.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError("no worker became idle in time")
            await asyncio.sleep(0.01)
        previous = time.monotonic()
        submitted.append(await submit(runtime, auth))
    ids = [s.task_id for s in submitted]
    rows = await wait_finished(runtime, cluster, ids, timeout=2 * task_seconds + 60)
    starts = read_starts(starts_dir)
    to_start, to_claim, commit = [], [], []
    missing = 0
    for item in submitted:
        commit.append(item.committed - item.begin)
        if item.task_id not in starts:
            missing += 1
            continue
        to_start.append(starts[item.task_id] - item.committed)
        started_at = rows.get(item.task_id, ("", None, None))[1]
        if started_at is not None:
            to_claim.append(as_utc(started_at).timestamp() - item.committed)
    return Latency(cluster.size, to_start, to_claim, commit, missing)


# --------------------------------------------------------------------------- setup


async def make_auth(runtime: Runtime) -> AuthContext:
    from framegate.keys.service import AuthContext

    async with runtime.sessionmaker() as session:
        created = await runtime.accounts.create(session, name="bench", credits=10_000_000)
        await session.commit()
    return AuthContext(account=created.account, key=created.key.key)


def cpu_ticks() -> tuple[float, float]:
    """(busy, total) seconds of all CPUs so far, from /proc/stat (zeros elsewhere)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]
        total = sum(fields[:8])
        return (total - idle) / CLK_TCK, total / CLK_TCK
    return 0.0, 0.0


def own_cpu() -> float:
    """CPU seconds of this process and its reaped children (the workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# --------------------------------------------------------------------------- report


def render(
    runs: list[ThroughputRun],
    latency: Latency | None,
    machine: list[tuple[str, str]],
    args: argparse.Namespace,
) -> str:
    out = [f"- {key}: {value}" for key, value in machine]
    out += [
        "",
        f"Throughput: wait engine {args.task_seconds:g} s per task, concurrency 1 per worker, "
        f"{args.tasks_per_worker} tasks per worker, submitted through the service layer",
        "",
        "| workers | tasks | seconds | tasks/s | ideal tasks/s | vs ideal | vs linear "
        "(W x 1-worker) | statuses |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    base = next((r.rate for r in runs if r.workers == 1 and r.completed == r.tasks), None)
    verdicts: list[str] = []
    for r in runs:
        ideal = r.workers / args.task_seconds
        linear = r.rate / (r.workers * base) if base else float("nan")
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(r.statuses.items()))
        out.append(
            f"| {r.workers} | {r.tasks} | {r.seconds:.2f} | {r.rate:.3f} | {ideal:.3f} | "
            f"{r.rate / ideal:.3f} | {linear:.3f} | {statuses} |"
        )
        if r.workers > 1:
            verdicts.append(f"{r.workers}: {'met' if linear >= GOAL_LINEAR else 'missed'}")
    out.append("")
    out.append(f"- goal: >= {GOAL_LINEAR:g} x linear up to 8 workers -> " + "; ".join(verdicts))
    if latency is not None:
        p99 = percentile_ms(latency.to_start, 0.99)
        out += [
            "",
            f"Dispatch latency: {len(latency.to_start)} tasks, {latency.workers} idle workers, "
            "one task submitted at a time",
            "",
            "| measure | p50 ms | p99 ms | max ms |",
            "|---|---:|---:|---:|",
        ]
        for label, values in (
            ("commit -> engine start", latency.to_start),
            ("commit -> claimed (started_at)", latency.to_claim),
            ("submit_video + commit", latency.commit),
        ):
            out.append(
                f"| {label} | {percentile_ms(values, 0.5):.1f} | "
                f"{percentile_ms(values, 0.99):.1f} | {max(values, default=0) * 1000:.1f} |"
            )
        out.append("")
        out.append(
            f"- goal: p99 commit -> engine start <= {GOAL_P99_MS:g} ms -> "
            f"{'met' if p99 <= GOAL_P99_MS else 'missed'} ({p99:.1f} ms)"
        )
        if latency.missing:
            out.append(f"- {latency.missing} tasks never started (left out of the figures)")
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def cluster_argv(args: argparse.Namespace, starts_dir: Path) -> list[str]:
    options = ["--concurrency", "1", "--task-seconds", str(args.task_seconds)]
    options += ["--starts-dir", str(starts_dir)]
    return worker_argv(SCRIPT, options, args.worker_max_seconds)


async def measure(
    args: argparse.Namespace, env: dict[str, str], argv: list[str], workdir: Path
) -> tuple[list[ThroughputRun], Latency | None]:
    from framegate.config import Settings
    from framegate.engines.registry import EngineRegistry
    from framegate.runtime import Runtime

    runs: list[ThroughputRun] = []
    latency: Latency | None = None
    # The API node: migrates, runs no engine, follows the live workers' routes.
    runtime = await Runtime.create(Settings(), engines=EngineRegistry([]))
    try:
        await runtime.start_workers()
        auth = await make_auth(runtime)
        for size in args.workers:
            known = set(await procrastinate_worker_ids(runtime))
            started = time.monotonic()
            with running(Cluster(size, argv, env, workdir)) as cluster:
                await wait_ready(runtime, cluster, known)
                ready = time.monotonic() - started
                run = await measure_throughput(
                    runtime, auth, cluster, size * args.tasks_per_worker, args.task_seconds
                )
                runs.append(run)
                print(
                    f"  {size} workers (ready in {ready:.1f} s): {run.tasks} tasks in "
                    f"{run.seconds:.2f} s ({run.rate:.3f} tasks/s)",
                    file=sys.stderr,
                )
                if size == args.latency_workers and args.latency_tasks > 0:
                    latency = await measure_latency(
                        runtime,
                        auth,
                        cluster,
                        args.latency_tasks,
                        args.task_seconds,
                        workdir / "starts",
                    )
                stopping = time.monotonic()
            print(f"  stopped in {time.monotonic() - stopping:.1f} s", file=sys.stderr)
    finally:
        await runtime.close()
    return runs, latency


def benchmark(args: argparse.Namespace, workdir: Path) -> None:
    load_before = load_average()
    catalog = workdir / "catalog.yaml"
    write_catalog(catalog, ROUTE_ID, ENGINE_NAME)
    starts_dir = workdir / "starts"
    starts_dir.mkdir(exist_ok=True)
    with throwaway_database() as (database_url, version):
        env = cluster_env(workdir / "data", database_url, catalog)
        # This process reads its settings from the same environment as the workers.
        for key in [k for k in os.environ if k.startswith("FRAMEGATE_")]:
            del os.environ[key]
        os.environ.update({k: v for k, v in env.items() if k.startswith("FRAMEGATE_")})
        busy_before, total_before, own_before = *cpu_ticks(), own_cpu()
        runs, latency = asyncio.run(measure(args, env, cluster_argv(args, starts_dir), workdir))
    busy_after, total_after, own_after = *cpu_ticks(), own_cpu()
    cpus = os.cpu_count() or 1
    elapsed = (total_after - total_before) / cpus
    if elapsed > 0:
        busy = (busy_after - busy_before) / elapsed
        own = (own_after - own_before) / elapsed
        cpu_use = (
            f"{busy:.2f} of {cpus} cores busy on average over {elapsed:.0f} s; this "
            f"benchmark's processes {own:.2f}, everything else (PostgreSQL, other work) "
            f"{busy - own:.2f}"
        )
    else:
        cpu_use = "unknown"
    machine = [
        *machine_head(),
        ("database", f"PostgreSQL {version} on 127.0.0.1 (throwaway database, dropped)"),
        (LOAD_BEFORE, load_before),
        (LOAD_AFTER, load_average()),
        ("CPU use during the run", cpu_use),
    ]
    print(render(runs, latency, machine, args))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--workers",
        type=lambda text: [int(part) for part in text.split(",")],
        default=None,
        help="worker process counts, comma-separated (default 1,2,4,8; --quick 1,4)",
    )
    parser.add_argument("--tasks-per-worker", type=int, default=None, help="default 8 (quick 3)")
    parser.add_argument("--task-seconds", type=float, default=2.0, help="the engine's wait")
    parser.add_argument("--latency-tasks", type=int, default=None, help="default 120 (quick 30)")
    parser.add_argument(
        "--latency-workers", type=int, default=None, help="default: the largest worker count"
    )
    parser.add_argument("--quick", action="store_true", help="fewer workers and tasks")
    parser.add_argument(
        "--keep", type=Path, help="work directory to keep (worker logs, engine start times)"
    )
    add_worker_arguments(parser)
    parser.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--starts-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args)
    if args.workers is None:
        args.workers = [1, 4] if args.quick else [1, 2, 4, 8]
    if args.tasks_per_worker is None:
        args.tasks_per_worker = 3 if args.quick else 8
    if args.latency_tasks is None:
        args.latency_tasks = 30 if args.quick else 120
    if args.latency_workers is None:
        args.latency_workers = max(args.workers)
    if args.latency_tasks > 0 and args.latency_workers not in args.workers:
        parser.error("--latency-workers must be one of --workers")

    exit_on_sigterm()  # unwinds through the clean-up below
    in_workdir(args.keep, "framegate-dist-", lambda workdir: benchmark(args, workdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
