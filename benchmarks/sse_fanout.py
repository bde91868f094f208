"""SSE fan-out across API nodes: progress latency to S event streams on one task.

Usage::

    python benchmarks/sse_fanout.py [--streams 10,100,400] [--steps 10] [--step-seconds 0.5]
                                    [--quick] [--keep DIR]

What it does, all on this machine and one PostgreSQL server (127.0.0.1:5432, user postgres):

1. Creates a throwaway database (dropped at the end) and writes a catalog file
   (``FRAMEGATE_CATALOG_FILE``) with one route, ``steps``, served by the ``steps`` engine
   defined here: it waits for a "go" file, then runs ``--steps`` (10) steps of
   ``--step-seconds`` (0.5) each, no CPU, calling the progress callback with k / steps at the
   end of step k (k = 1 .. steps - 1; the last step only ends the task), and appends
   ``percent<TAB>time.time()`` for each call (and the task's start and end) to a file.
2. Starts two real API nodes (``framegate serve``, ``FRAMEGATE_DISPATCH=distributed``) on
   loopback and one worker process (this script with ``--worker``: ``ClusterWorker`` with
   the steps engine, concurrency 1), and creates an account with ``framegate admin
   create-account``.
3. For each stream count S in ``--streams`` (default 10, 100, 400; ``--quick`` 10, 100):
   submits one task over HTTP to node A, opens S ``GET /v1/tasks/{id}/events`` streams
   (httpx async streaming, S / 2 on each node), waits until every stream got its first
   event, then creates the go file. Every stream records ``time.time()`` at each event it
   receives, until the terminal ``status`` event.

Latency is from the engine's progress call (worker process, same machine clock) to the
stream's receipt. It includes the worker's heartbeat: the runner writes progress only in its
lease heartbeat, which looks at the engine's progress every 0.5 s, so up to 0.5 s of every
figure is that check interval (both run every 0.5 s, so the phase between them is about
constant within one task, and differs between tasks). The spread across streams (receipt
minus the first stream's receipt of the same value) leaves the heartbeat out: that part is
the fan-out itself. The terminal event's latency is from the engine's return.

CPU: user + system seconds of both API nodes' processes (psutil) from the go file to the
last stream's end, divided by the stream events received in that time (all events,
progress and status). In distributed mode an open stream re-reads its task when woken by a
notification (or every 30 s as a safety net), so that is all the nodes' per-stream work.

Every wait is bounded; the nodes and the worker are stopped (SIGTERM, then SIGKILL of their
process groups) on the way out, SIGTERM and Ctrl-C included; the worker also exits once this
process is gone. Only a SIGKILL of this process leaves its database (``framegate_bench_*``)
behind, to drop by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
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
    FRAMEGATE,
    LOAD_AFTER,
    LOAD_BEFORE,
    READY_TIMEOUT_S,
    Processes,
    exit_on_sigterm,
    in_workdir,
    load_average,
    machine_head,
    own_cpu_seconds,
    percentile_ms,
    start_serve,
    throwaway_database,
    tree_cpu_seconds,
    venv_path,
)

if TYPE_CHECKING:
    from framegate.engines.base import GenerationRequest, ProgressCallback

ROUTE_ID = "steps"
ENGINE_NAME = "steps"
REQUEST = video_request(ROUTE_ID)
GO_TIMEOUT_S = 120.0
SCRIPT = Path(__file__).resolve()


# --------------------------------------------------------------------------- worker side


class StepsEngine(BenchEngine):
    """Waits for ``go_dir/<task id>``, then ``steps`` sleeps, reporting progress between
    them; appends ``task_id<TAB>what<TAB>time.time()`` to ``log_path`` (what: start, go,
    the percent the runner will write for each progress call, end)."""

    name = ENGINE_NAME

    def __init__(self, steps: int, step_seconds: float, go_dir: Path, log_path: Path) -> None:
        super().__init__(log_path)
        self.steps, self.step_seconds, self.go_dir = steps, step_seconds, go_dir

    async def work(self, request: GenerationRequest, progress: ProgressCallback) -> None:
        self.note(request.task_id, "start")
        deadline = time.monotonic() + GO_TIMEOUT_S
        # A file from another process: nothing here to wait on but the file system.
        while not (self.go_dir / request.task_id).exists() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        self.note(request.task_id, "go")
        for step in range(1, self.steps + 1):
            await asyncio.sleep(self.step_seconds)
            if step < self.steps:
                fraction = step / self.steps
                progress(fraction)
                # The percent the runner's heartbeat will write for it.
                self.note(request.task_id, str(min(99, int(fraction * 100))))
        self.note(request.task_id, "end")


def worker_main(args: argparse.Namespace) -> int:
    engine = StepsEngine(args.steps, args.step_seconds, args.go_dir, args.engine_log)
    return run_worker(engine, ROUTE_ID, 1, args.parent_pid, args.worker_max_seconds)


# --------------------------------------------------------------------------- measuring


@dataclass
class Stream:
    node: int
    events: list[tuple[str, str, int, float]] = field(default_factory=list)  # kind, status, %
    error: str = ""
    first: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Run:
    streams: int
    values: list[int]  # the progress percents the engine reported
    latencies: list[float]  # seconds, engine progress -> receipt, per (stream, value) received
    spreads: list[float]  # seconds, receipt - first stream's receipt of the same value
    received: int  # (stream, value) pairs received
    distinct: int  # distinct progress values (of `values`) that reached any stream
    per_stream: tuple[int, int]  # min, max distinct values one stream received
    identical: bool  # every stream received the same progress sequence
    terminal: list[float]  # seconds, engine end -> terminal event receipt
    completed: int  # streams whose last event was status completed
    errors: int
    events: int  # stream events received after the go file
    node_cpu: float  # seconds, both nodes, go file -> last stream end
    own_cpu: float  # seconds, this process, same window
    window: float  # seconds


async def read_stream(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], stream: Stream
) -> None:
    try:
        async with client.stream("GET", url, headers=headers) as response:
            if response.status_code != 200:
                stream.error = f"HTTP {response.status_code}"
                return
            kind = ""
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    now = time.time()
                    body = json.loads(line.split(":", 1)[1])
                    stream.events.append((kind, body["status"], int(body["progress"]), now))
                    stream.first.set()
    except httpx.HTTPError as exc:
        stream.error = repr(exc)
    finally:
        stream.first.set()


def read_engine_log(path: Path, task_id: str) -> dict[str, float]:
    notes: dict[str, float] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[0] == task_id:
                notes.setdefault(parts[1], float(parts[2]))
    return notes


async def submit(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> str:
    """POST the task; 503 (no live worker serves the route yet) retried, bounded."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        response = await client.post(
            f"{url}/v1/async/videos/generations", json=REQUEST, headers=headers
        )
        if response.status_code == 202:
            return str(response.json()["id"])
        if response.status_code != 503 or time.monotonic() > deadline:
            raise RuntimeError(f"submit: {response.status_code} {response.text[:500]}")
        await asyncio.sleep(0.2)


async def measure_one(
    count: int,
    urls: list[str],
    pids: list[int],
    headers: dict[str, str],
    procs: Processes,
    go_dir: Path,
    engine_log: Path,
    args: argparse.Namespace,
) -> Run:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    timeout = httpx.Timeout(args.steps * args.step_seconds + 120, connect=30)
    clients = [httpx.AsyncClient(limits=limits, timeout=timeout) for _ in urls]
    try:
        task_id = await submit(clients[0], urls[0], headers)
        streams = [Stream(node=i % len(urls)) for i in range(count)]
        readers = [
            asyncio.create_task(
                read_stream(
                    clients[s.node], f"{urls[s.node]}/v1/tasks/{task_id}/events", headers, s
                )
            )
            for s in streams
        ]
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not all(s.first.is_set() for s in streams):
            procs.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError("not every stream got its first event in time")
            await asyncio.sleep(0.05)
        # Until the worker holds the task (the engine waits for the go file).
        while "start" not in read_engine_log(engine_log, task_id):
            procs.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError("the engine did not start in time")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the streams have seen "processing" by now
        before = [len(s.events) for s in streams]
        cpu_before = tree_cpu_seconds(*pids)
        own_before, clock = own_cpu_seconds(), time.monotonic()
        (go_dir / task_id).touch()
        end_by = time.monotonic() + args.steps * args.step_seconds + 120
        for reader in readers:
            await asyncio.wait_for(reader, timeout=max(1.0, end_by - time.monotonic()))
        window = time.monotonic() - clock
        cpu = tree_cpu_seconds(*pids) - cpu_before
        own_cpu = own_cpu_seconds() - own_before
    finally:
        for client in clients:
            await client.aclose()

    notes = read_engine_log(engine_log, task_id)
    values = sorted(int(k) for k in notes if k.isdigit())
    latencies: list[float] = []
    spreads: list[float] = []
    received = 0
    got_any: set[int] = set()
    per_stream: list[int] = []
    sequences: set[tuple[int, ...]] = set()
    terminal: list[float] = []
    completed = 0
    firsts: dict[int, float] = {}
    for s in streams:
        for kind, status, percent, at in s.events:
            if kind == "progress" and status == "processing" and percent in values:
                firsts[percent] = min(firsts.get(percent, at), at)
    for s in streams:
        seen = [
            (p, at) for kind, status, p, at in s.events if status == "processing" and p in values
        ]
        sequences.add(tuple(p for p, _ in seen))
        per_stream.append(len({p for p, _ in seen}))
        for percent, at in seen:
            received += 1
            got_any.add(percent)
            latencies.append(at - notes[str(percent)])
            spreads.append(at - firsts[percent])
        if s.events and s.events[-1][1] == "completed":
            completed += 1
            if "end" in notes:
                terminal.append(s.events[-1][3] - notes["end"])
    return Run(
        streams=count,
        values=values,
        latencies=latencies,
        spreads=spreads,
        received=received,
        distinct=len(got_any),
        per_stream=(min(per_stream, default=0), max(per_stream, default=0)),
        identical=len(sequences) == 1,
        terminal=terminal,
        completed=completed,
        errors=sum(1 for s in streams if s.error),
        events=sum(len(s.events) for s in streams) - sum(before),
        node_cpu=cpu,
        own_cpu=own_cpu,
        window=window,
    )


# --------------------------------------------------------------------------- setup


# --------------------------------------------------------------------------- report


def render(runs: list[Run], machine: list[tuple[str, str]], args: argparse.Namespace) -> str:
    out = [f"- {key}: {value}" for key, value in machine]
    out += [
        "",
        f"Steps engine: {args.steps} steps of {args.step_seconds:g} s, progress after each "
        f"but the last; 2 API nodes, streams split evenly; 1 worker",
        "",
        "| streams | progress → receipt p50 / p99 / max ms | spread across streams p50 / p99 "
        "/ max ms | received (stream x value) | distinct values (any stream; per stream "
        "min-max) | same sequence on all | terminal p50 / max ms | completed | node CPU ms "
        "per stream-event | script CPU s |",
        "|---:|---|---|---|---|---|---|---|---:|---:|",
    ]
    for r in runs:
        pairs = r.streams * len(r.values)
        per_event = r.node_cpu / r.events * 1000 if r.events else float("nan")
        out.append(
            f"| {r.streams} | {percentile_ms(r.latencies, 0.5):.0f} / "
            f"{percentile_ms(r.latencies, 0.99):.0f} / {max(r.latencies, default=0) * 1000:.0f}"
            f" | {percentile_ms(r.spreads, 0.5):.1f} / {percentile_ms(r.spreads, 0.99):.1f} / "
            f"{max(r.spreads, default=0) * 1000:.1f} | {r.received} of {pairs} "
            f"({r.received / pairs if pairs else 0:.3f}) | {r.distinct} of {len(r.values)}; "
            f"{r.per_stream[0]}-{r.per_stream[1]} | {'yes' if r.identical else 'no'} | "
            f"{percentile_ms(r.terminal, 0.5):.0f} / {max(r.terminal, default=0) * 1000:.0f} | "
            f"{r.completed} of {r.streams}{f', {r.errors} errors' if r.errors else ''} | "
            f"{per_event:.2f} ({r.node_cpu:.2f} s / {r.events} events / {r.window:.1f} s) | "
            f"{r.own_cpu:.2f} |"
        )
    return "\n".join(out)


# --------------------------------------------------------------------------- main


async def measure(
    args: argparse.Namespace, env: dict[str, str], workdir: Path, procs: Processes
) -> list[Run]:
    go_dir, engine_log = workdir / "go", workdir / "engine.tsv"
    go_dir.mkdir(exist_ok=True)
    url_a, node_a = start_serve(procs, "node-a")  # migrates the database
    url_b, node_b = start_serve(procs, "node-b")
    options = ["--steps", str(args.steps), "--step-seconds", str(args.step_seconds)]
    options += ["--go-dir", str(go_dir), "--engine-log", str(engine_log)]
    procs.start("worker", worker_argv(SCRIPT, options, args.worker_max_seconds))
    done = await asyncio.to_thread(
        subprocess.run,
        [FRAMEGATE, "admin", "create-account", "--name", "bench", "--credits", "1000000", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"create-account: {done.stderr[-2000:]}")
    headers = {"Authorization": f"Bearer {json.loads(done.stdout)['api_key']}"}
    runs = []
    for count in args.streams:
        run = await measure_one(
            count,
            [url_a, url_b],
            [node_a.pid, node_b.pid],
            headers,
            procs,
            go_dir,
            engine_log,
            args,
        )
        runs.append(run)
        print(
            f"  {count} streams: {run.received} progress receipts, p99 "
            f"{percentile_ms(run.latencies, 0.99):.0f} ms, {run.completed} completed",
            file=sys.stderr,
        )
    return runs


def benchmark(args: argparse.Namespace, workdir: Path) -> None:
    load_before = load_average()
    catalog = workdir / "catalog.yaml"
    write_catalog(catalog, ROUTE_ID, ENGINE_NAME)
    with throwaway_database() as (database_url, version):
        env = cluster_env(
            workdir / "data",
            database_url,
            catalog,
            PATH=venv_path(),
            FRAMEGATE_ANONYMOUS_REQUESTS_PER_MINUTE="100000000",
        )
        procs = Processes(env, workdir)
        try:
            runs = asyncio.run(measure(args, env, workdir, procs))
        finally:
            procs.stop()
    machine = [
        *machine_head(),
        ("database", f"PostgreSQL {version} on 127.0.0.1 (throwaway database, dropped)"),
        (LOAD_BEFORE, load_before),
        (LOAD_AFTER, load_average()),
    ]
    print(render(runs, machine, args))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--streams",
        type=lambda text: [int(part) for part in text.split(",")],
        default=None,
        help="stream counts, comma-separated (default 10,100,400; --quick 10,100)",
    )
    parser.add_argument("--steps", type=int, default=10, help="the engine's steps")
    parser.add_argument("--step-seconds", type=float, default=0.5, help="seconds per step")
    parser.add_argument("--quick", action="store_true", help="10 and 100 streams only")
    parser.add_argument("--keep", type=Path, help="work directory to keep (logs, engine times)")
    add_worker_arguments(parser)
    parser.add_argument("--go-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--engine-log", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args)
    if args.streams is None:
        args.streams = [10, 100] if args.quick else [10, 100, 400]

    exit_on_sigterm()  # unwinds through the clean-up below
    in_workdir(args.keep, "framegate-sse-", lambda workdir: benchmark(args, workdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
