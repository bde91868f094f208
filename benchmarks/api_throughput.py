"""API throughput: framegate's poll and submit paths against a bare FastAPI app.

Usage::

    python benchmarks/api_throughput.py [--seconds 10] [--concurrency 16] [--rounds 3]
                                        [--database sqlite|postgresql] [--no-pin]

What it does, all on 127.0.0.1:

1. Starts ``framegate serve`` as a real subprocess (one uvicorn process, the embedded worker
   pool set to 0 with ``FRAMEGATE_WORKER_CONCURRENCY=0`` so that the CPU goes to the API, not
   to rendering) on a free port with a temporary data directory, creates an account through
   the CLI, submits one task and measures
   - poll: ``GET /v1/tasks/{id}`` on that (queued) task;
   - submit: ``POST /v1/async/videos/generations`` with a tiny clip.
2. Starts a bare FastAPI app served the same way (one uvicorn process, ``uvicorn.run`` with the
   same arguments as ``framegate serve``, so the same loop and HTTP implementations) whose one
   route, ``GET /v1/tasks/{id}``, returns the very JSON object framegate answered the poll with.
3. Measures the three targets in turn, ``--rounds`` times (both servers stay up, the idle one
   costs nothing), and prints each target's best round, the framegate/bare ratios and the goal
   (poll at least 50% of bare). Best-of-rounds because other work on a shared machine can only
   lower a figure.

The load generator runs in this script's own process: one asyncio event loop driving
``--concurrency`` keep-alive HTTP/1.1 connections over raw sockets, one request in flight per
connection (closed loop), with the request bytes encoded once. It costs a few microseconds of
CPU per request, far less than any server here, and both targets get exactly the same
generator and request bytes. With ``--pin`` (the default where there are at least two CPUs)
the server is pinned to CPU 0 and the generator to CPU 1 so that neither starves the other.

Every load phase is bounded in time; every subprocess is terminated on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
from _common import (
    HOST,
    LOAD_BEFORE,
    free_port,
    load_average,
    log_tail,
    machine_head,
    own_cpu_seconds,
    percentile_ms,
    throwaway_database,
    wait_healthy,
)

GOAL_RATIO = 0.5
LOG_LEVEL = "info"  # framegate's default; the bare app gets the same
STARTUP_TIMEOUT_S = 60.0
SUBMIT_BODY = {"model": "preview", "prompt": "x", "duration": 1, "size": "64x64", "fps": 8}
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- load generator


@dataclass
class LoadResult:
    """What one load phase measured (only requests sent inside the measured window)."""

    label: str
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        return percentile_ms(self.latencies, q)


class _Window:
    """The shared clock of one phase: warm-up until ``start``, measured until ``end``."""

    def __init__(self, start: float, end: float, result: LoadResult, ok: tuple[int, ...]):
        self.start = start
        self.end = end
        self.result = result
        self.ok = ok


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request in flight, driven by callbacks."""

    def __init__(self, request: bytes, window: _Window, done: asyncio.Future[None]) -> None:
        self._request = request
        self._window = window
        self._done = done
        self._buffer = bytearray()
        self._need = -1  # total bytes of the current response, once its head is parsed
        self._status = 0
        self._sent_at = 0.0
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._send()

    def _send(self) -> None:
        assert self._transport is not None
        self._sent_at = time.perf_counter()
        self._transport.write(self._request)

    def _finish(self) -> None:
        if not self._done.done():
            self._done.set_result(None)
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            if self._need < 0:
                head_end = self._buffer.find(b"\r\n\r\n")
                if head_end < 0:
                    return
                head = bytes(self._buffer[:head_end]).lower()
                self._status = int(head[9:12])
                marker = head.find(b"\r\ncontent-length:")
                if marker < 0:  # the servers here always send Content-Length
                    self._window.result.errors += 1
                    self._finish()
                    return
                line_end = head.find(b"\r\n", marker + 2)
                length = int(head[marker + 17 : line_end if line_end >= 0 else len(head)])
                self._need = head_end + 4 + length
            if len(self._buffer) < self._need:
                return
            del self._buffer[: self._need]
            self._need = -1
            self._complete()
            if self._done.done():
                return

    def _complete(self) -> None:
        now = time.perf_counter()
        window = self._window
        if window.start <= self._sent_at and now <= window.end:
            result = window.result
            result.latencies.append(now - self._sent_at)
            result.statuses[self._status] = result.statuses.get(self._status, 0) + 1
            if self._status not in window.ok:
                result.errors += 1
        if now >= window.end:
            self._finish()
        else:
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._done.done():
            self._window.result.errors += 1
            self._done.set_result(None)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


async def _drive(
    label: str,
    port: int,
    request: bytes,
    ok: tuple[int, ...],
    *,
    concurrency: int,
    seconds: float,
    warmup: float,
    server_pid: int,
) -> LoadResult:
    loop = asyncio.get_running_loop()
    result = LoadResult(label=label, seconds=seconds)
    now = time.perf_counter()
    window = _Window(now + warmup, now + warmup + seconds, result, ok)
    marks: dict[str, tuple[float, float]] = {}

    def mark(name: str) -> None:
        marks[name] = (_cpu_seconds(server_pid), own_cpu_seconds())

    loop.call_later(warmup, mark, "start")
    loop.call_later(warmup + seconds, mark, "end")
    done: list[asyncio.Future[None]] = []
    for _ in range(concurrency):
        finished: asyncio.Future[None] = loop.create_future()
        done.append(finished)
        await loop.create_connection(
            lambda finished=finished: _Connection(request, window, finished),  # type: ignore[misc]
            HOST,
            port,
        )
    # Bounded: every connection stops sending at window.end; a stuck one is cut off here.
    await asyncio.wait(done, timeout=warmup + seconds + 30.0)
    await asyncio.sleep(0.05)
    if "start" in marks and "end" in marks:
        result.server_cpu_s = marks["end"][0] - marks["start"][0]
        result.client_cpu_s = marks["end"][1] - marks["start"][1]
    return result


def run_load(
    label: str,
    port: int,
    request: bytes,
    ok: tuple[int, ...],
    *,
    concurrency: int,
    seconds: float,
    warmup: float,
    server_pid: int,
    client_cpu: int | None,
) -> LoadResult:
    previous = os.sched_getaffinity(0)
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})
    try:
        coroutine = _drive(
            label,
            port,
            request,
            ok,
            concurrency=concurrency,
            seconds=seconds,
            warmup=warmup,
            server_pid=server_pid,
        )
        if importlib.util.find_spec("uvloop") is not None:
            import uvloop

            return uvloop.run(coroutine)
        return asyncio.run(coroutine)
    finally:
        os.sched_setaffinity(0, previous)


def encode_request(method: str, path: str, port: int, api_key: str, body: bytes = b"") -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {HOST}:{port}",
        f"Authorization: Bearer {api_key}",
        "Accept: application/json",
    ]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# --------------------------------------------------------------------------- servers


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited early:\n{log_tail(self.log_path)}")


def _pin_to(cpu: int | None) -> Any:
    if cpu is None:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, {cpu})

    return pin


@contextlib.contextmanager
def running(
    name: str, argv: list[str], env: dict[str, str], log_path: Path, cpu: int | None
) -> Iterator[Server]:
    """Start a server subprocess, wait until it answers /healthz, always terminate it."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*argv, "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_pin_to(cpu),
        )
    server = Server(name, process, port, log_path)
    try:
        _wait_ready(server)
        yield server
    finally:
        _stop(process)


def _wait_ready(server: Server) -> None:
    wait_healthy(
        f"http://{HOST}:{server.port}",
        server.check_alive,
        STARTUP_TIMEOUT_S,
        f"{server.name} did not answer within {STARTUP_TIMEOUT_S}s",
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def serve_bare(port: int, payload_file: Path) -> None:
    """The baseline: one FastAPI route returning a fixed task-sized JSON object."""
    import uvicorn
    from fastapi import FastAPI

    payload: dict[str, Any] = json.loads(payload_file.read_text())
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/tasks/{task_id}")
    async def get_task(task_id: str) -> dict[str, Any]:
        return payload

    # The same call as `framegate serve`: loop and http left to uvicorn's "auto" choice.
    uvicorn.run(app, host=HOST, port=port, log_level=LOG_LEVEL, access_log=False)


# --------------------------------------------------------------------------- databases


@contextlib.contextmanager
def database(kind: str) -> Iterator[tuple[str, str]]:
    """Yield (FRAMEGATE_DATABASE_URL or "", description); a PostgreSQL one is dropped after."""
    if kind == "sqlite":
        import sqlite3

        yield "", f"SQLite {sqlite3.sqlite_version} (file in a temporary data directory, WAL)"
        return
    with throwaway_database() as (url, version):
        yield url, f"PostgreSQL {version} on 127.0.0.1 (throwaway database)"


# --------------------------------------------------------------------------- report


def server_stack() -> str:
    import uvicorn

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"uvicorn {uvicorn.__version__}, 1 process, loop={loop}, http={http}, no access log"


def _pct(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.0f}%" if whole > 0 else "n/a"


def render(
    results: list[LoadResult], machine: list[tuple[str, str]], notes: list[str], seconds: float
) -> str:
    by_label = {r.label: r for r in results}
    bare = by_label["bare FastAPI GET"]
    poll = by_label["framegate poll"]
    submit = by_label["framegate submit"]
    out: list[str] = []
    out += [f"- {key}: {value}" for key, value in machine]
    out.append("")
    out.append(
        "| target | requests/s | p50 ms | p99 ms | requests | errors "
        "| server CPU | server CPU ms/request | client CPU |"
    )
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in (bare, poll, submit):
        per_request = 1000.0 * r.server_cpu_s / r.requests if r.requests else float("nan")
        out.append(
            f"| {r.label} | {r.rps:,.0f} | {r.percentile_ms(0.50):.2f} | "
            f"{r.percentile_ms(0.99):.2f} | {r.requests:,} | {r.errors} | "
            f"{_pct(r.server_cpu_s, seconds)} | {per_request:.2f} | "
            f"{_pct(r.client_cpu_s, seconds)} |"
        )
    poll_ratio = poll.rps / bare.rps if bare.rps else 0.0
    submit_ratio = submit.rps / bare.rps if bare.rps else 0.0
    verdict = "met" if poll_ratio >= GOAL_RATIO else "missed"
    out.append("")
    out.append(f"- poll / bare throughput: {poll_ratio:.1%}")
    out.append(f"- submit / bare throughput: {submit_ratio:.1%}")
    out.append(f"- goal: poll >= {GOAL_RATIO:.0%} of bare -> {verdict}")
    out += [f"- {note}" for note in notes]
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def _create_account(env: dict[str, str]) -> str:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "framegate",
            "admin",
            "create-account",
            "--name",
            "bench",
            "--credits",
            "1000000000",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    api_key: str = json.loads(completed.stdout.strip().splitlines()[-1])["api_key"]
    return api_key


@dataclass(frozen=True)
class Target:
    label: str
    port: int
    request: bytes
    ok: tuple[int, ...]
    server_pid: int


def _prepare_framegate(base: str, api_key: str) -> dict[str, Any]:
    """Submit the task that the poll phase reads; return its JSON as the API answers it."""
    headers = {"Authorization": f"Bearer {api_key}"}
    created = httpx.post(f"{base}/v1/async/videos/generations", json=SUBMIT_BODY, headers=headers)
    created.raise_for_status()
    polled = httpx.get(f"{base}/v1/tasks/{created.json()['id']}", headers=headers)
    polled.raise_for_status()
    payload: dict[str, Any] = polled.json()
    return payload


def benchmark(args: argparse.Namespace) -> None:
    load_before = load_average()
    pin = args.pin and len(os.sched_getaffinity(0)) >= 2
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = (cpus[0], cpus[1]) if pin else (None, None)
    rounds: dict[str, list[LoadResult]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="framegate-bench-") as tmp,
        database(args.database) as (database_url, database_text),
    ):
        workdir = Path(tmp)
        env = {
            **os.environ,
            "FRAMEGATE_DATA_DIR": str(workdir / "data"),
            "FRAMEGATE_DATABASE_URL": database_url,
            "FRAMEGATE_WORKER_CONCURRENCY": "0",
            # Limits stay on (their cost is part of every request) but never refuse here.
            "FRAMEGATE_DEFAULT_REQUESTS_PER_MINUTE": "100000000",
            "FRAMEGATE_DEFAULT_MAX_CONCURRENT_VIDEOS": "100000000",
            "FRAMEGATE_LOG_LEVEL": LOG_LEVEL,
            "FRAMEGATE_ENV": "development",
        }
        for name in ("FRAMEGATE_SECRET_KEY", "FRAMEGATE_PUBLIC_URL", "FRAMEGATE_CATALOG_FILE"):
            env.pop(name, None)
        api_key = _create_account(env)
        argv = [sys.executable, "-m", "framegate", "serve", "--host", HOST]
        payload_file = workdir / "payload.json"
        bare_argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve-bare",
            str(payload_file),
        ]
        with running("framegate", argv, env, workdir / "framegate.log", server_cpu) as server:
            payload = _prepare_framegate(f"http://{HOST}:{server.port}", api_key)
            payload_file.write_text(json.dumps(payload))
            path = f"/v1/tasks/{payload['id']}"
            submit_body = json.dumps(SUBMIT_BODY, separators=(",", ":")).encode()
            # The bare server idles (on the same CPU) while framegate is measured, and back.
            with running("bare FastAPI", bare_argv, env, workdir / "bare.log", server_cpu) as bare:
                targets = [
                    Target(
                        "bare FastAPI GET",
                        bare.port,
                        encode_request("GET", path, bare.port, api_key),
                        (200,),
                        bare.process.pid,
                    ),
                    Target(
                        "framegate poll",
                        server.port,
                        encode_request("GET", path, server.port, api_key),
                        (200,),
                        server.process.pid,
                    ),
                    Target(
                        "framegate submit",
                        server.port,
                        encode_request(
                            "POST",
                            "/v1/async/videos/generations",
                            server.port,
                            api_key,
                            submit_body,
                        ),
                        (202,),
                        server.process.pid,
                    ),
                ]
                for _ in range(args.rounds):
                    for target in targets:
                        result = run_load(
                            target.label,
                            target.port,
                            target.request,
                            target.ok,
                            concurrency=args.concurrency,
                            seconds=args.seconds,
                            warmup=args.warmup,
                            server_pid=target.server_pid,
                            client_cpu=client_cpu,
                        )
                        rounds.setdefault(target.label, []).append(result)
    best = [max(results, key=lambda r: r.rps) for results in rounds.values()]
    machine = [
        *machine_head(memory=False),
        ("database", database_text),
        ("server", server_stack()),
        (LOAD_BEFORE, load_before),
    ]
    pinning = (
        f"server pinned to CPU {server_cpu}, load generator to CPU {client_cpu}"
        if pin
        else "no CPU pinning"
    )
    if pin and args.database == "postgresql":
        pinning += " (the PostgreSQL server's own processes are not pinned)"
    every_round = "; ".join(
        f"{label} " + " / ".join(f"{r.rps:,.0f}" for r in results)
        for label, results in rounds.items()
    )
    notes = [
        f"load: {args.concurrency} keep-alive HTTP/1.1 connections, one request in flight each "
        f"(closed loop), raw asyncio sockets in the benchmark process; {args.warmup:g} s "
        f"warm-up, then {args.seconds:g} s measured; {pinning}",
        f"rounds: {args.rounds}, each measuring the three targets in turn; the table shows each "
        f"target's best round (other work on the machine can only lower a figure); requests/s "
        f"of every round: {every_round}",
        f"poll: GET /v1/tasks/{{id}} on one task (status {payload.get('status')!r}, "
        f"{len(json.dumps(payload))} bytes of JSON); the bare route returns that same object",
        f"submit: POST /v1/async/videos/generations {json.dumps(SUBMIT_BODY)}",
        "framegate ran with FRAMEGATE_WORKER_CONCURRENCY=0: the CPU goes to the API, not to "
        "rendering (submitted tasks stay queued)",
        "server/client CPU: CPU time (all threads) used during the measured window, as % of one "
        "core; ms/request is the server's CPU time divided by the requests measured",
    ]
    print(render(best, machine, notes, args.seconds))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per phase")
    parser.add_argument("--concurrency", type=int, default=16, help="connections")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds over the three targets; best one shown"
    )
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pin server and load generator to different CPUs (when there are two)",
    )
    parser.add_argument("--serve-bare", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare is not None:
        serve_bare(args.port, args.serve_bare)
        return 0
    benchmark(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
