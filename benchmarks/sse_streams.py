"""Event streams: how many concurrent SSE streams one framegate process holds open.

Usage::

    python benchmarks/sse_streams.py [--streams 1000] [--tasks 10] [--idle-seconds 10]
                                     [--open-concurrency 100] [--ping-seconds S] [--no-pin]

What it does, all on 127.0.0.1:

1. Starts ``framegate serve`` as a real subprocess (one uvicorn process) with a temporary data
   directory and ``FRAMEGATE_WORKER_CONCURRENCY=0``, so that submitted tasks stay queued and
   their event streams stay open; plan limits are raised so nothing is rate-limited. Creates
   an account through the CLI and submits ``--tasks`` tiny ``preview`` tasks.
2. Opens ``--streams`` concurrent ``GET /v1/tasks/{id}/events`` streams, spread round-robin
   over those tasks, from this process: raw asyncio connections speaking HTTP/1.1 (chunked
   transfer decoding) and parsing SSE lines, at most ``--open-concurrency`` of them still
   waiting for their first event at any time. Measures how many opened and received their
   first event, and how long that took.
3. Holds them all open for ``--idle-seconds`` and measures the server's CPU time meanwhile
   (heartbeat comments every ``FRAMEGATE_SSE_PING_SECONDS``, default 15 s, plus each
   stream's own once-a-second re-check of its task).
4. Cancels every task (``POST /v1/tasks/{id}/cancel``, all at once) and measures, per stream,
   the time from its task's cancel request to its terminal ``status`` event and to the end
   of its response; counts streams that got more or fewer than one terminal event.

Server memory (VmRSS and VmHWM from ``/proc/<pid>/status``) is read before the streams, with
all of them open and after they closed. The process's soft RLIMIT_NOFILE is raised to the
hard limit at start; the server inherits it (its limit is read back from ``/proc`` and
printed). With ``--pin`` (the default where there are at least two CPUs) the server is pinned
to one CPU and this process to another. Every phase is bounded in time; the server is always
terminated on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import resource
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
from _common import LOAD_BEFORE, load_average, machine_head, own_cpu_seconds, percentile
from api_throughput import (
    HOST,
    SUBMIT_BODY,
    _cpu_seconds,
    _create_account,
    running,
    server_stack,
)

GOAL_STREAMS = 1000
TERMINAL = frozenset({"completed", "failed", "cancelled"})
OPEN_TIMEOUT_S = 60.0  # per stream: connect until first event
CLOSE_TIMEOUT_S = 60.0  # after the cancels: until every stream ended
SETTLE_S = 1.0

# --------------------------------------------------------------------------- SSE client


@dataclass
class StreamStats:
    """What one event stream saw (perf_counter timestamps; 0.0 = never)."""

    task_id: str
    started_at: float = 0.0
    first_event_at: float = 0.0
    terminal_at: float = 0.0
    ended_at: float = 0.0  # the response's last chunk
    closed_at: float = 0.0  # the connection is gone
    status_code: int = 0
    events: dict[str, int] = field(default_factory=dict)
    comments: int = 0
    terminals: int = 0
    after_terminal: int = 0
    error: str = ""


class SSEStream(asyncio.Protocol):
    """One ``GET /v1/tasks/{id}/events`` over HTTP/1.1, decoded as it arrives.

    Handles a chunked or close-delimited body and SSE lines ending in ``\\n`` or ``\\r\\n``.
    """

    def __init__(
        self,
        request: bytes,
        stats: StreamStats,
        first_event: asyncio.Future[None],
        ended: asyncio.Future[None],
    ) -> None:
        self._request = request
        self.stats = stats
        self._first_event = first_event
        self._ended = ended
        self._transport: asyncio.Transport | None = None
        self._raw = bytearray()  # bytes not yet decoded (head or chunk framing)
        self._head_done = False
        self._chunked = False
        self._chunk_left = -1  # -1: a size line is next; 0: the CRLF after a chunk is next
        self._text = bytearray()  # decoded body bytes not yet split into lines
        self._event = ""
        self._data: list[str] = []
        self.closing_on_purpose = False

    # -- transport callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        self._raw += data
        if not self._head_done and not self._parse_head():
            return
        if self._chunked:
            self._decode_chunks()
        else:
            self._body(bytes(self._raw))
            self._raw.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        now = time.perf_counter()
        self.stats.closed_at = now
        if not self._chunked and self._head_done and not self.stats.ended_at:
            self.stats.ended_at = now  # a close-delimited body ends here
        if not self.stats.ended_at and not self.closing_on_purpose and not self.stats.error:
            self.stats.error = f"connection lost before the stream ended ({exc!r})"
        self._resolve()

    # -- HTTP framing

    def _parse_head(self) -> bool:
        head_end = self._raw.find(b"\r\n\r\n")
        if head_end < 0:
            return False
        head = bytes(self._raw[:head_end]).decode("latin-1").lower()
        del self._raw[: head_end + 4]
        self._head_done = True
        self.stats.status_code = int(head[9:12])
        self._chunked = "\r\ntransfer-encoding: chunked" in head
        if self.stats.status_code != 200:
            self.stats.error = f"HTTP {self.stats.status_code}"
            self.close()
            return False
        return True

    def _decode_chunks(self) -> None:
        raw = self._raw
        while raw:
            if self._chunk_left < 0:
                line_end = raw.find(b"\r\n")
                if line_end < 0:
                    return
                size = int(bytes(raw[:line_end]).split(b";", 1)[0], 16)
                del raw[: line_end + 2]
                if size == 0:  # last chunk: the response is complete (no trailers expected)
                    self._end_of_response()
                    return
                self._chunk_left = size
            elif self._chunk_left == 0:
                if len(raw) < 2:
                    return
                del raw[:2]
                self._chunk_left = -1
            else:
                take = min(self._chunk_left, len(raw))
                self._body(bytes(raw[:take]))
                del raw[:take]
                self._chunk_left -= take

    def _end_of_response(self) -> None:
        self.stats.ended_at = time.perf_counter()
        self.close()

    # -- SSE

    def _body(self, data: bytes) -> None:
        self._text += data
        while True:
            line_end = self._text.find(b"\n")
            if line_end < 0:
                return
            line = bytes(self._text[:line_end]).rstrip(b"\r").decode()
            del self._text[: line_end + 1]
            self._line(line)

    def _line(self, line: str) -> None:
        if not line:
            if self._data or self._event:
                self._dispatch(self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return
        if line.startswith(":"):
            self.stats.comments += 1
            return
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)

    def _dispatch(self, kind: str, data: str) -> None:
        now = time.perf_counter()
        stats = self.stats
        stats.events[kind] = stats.events.get(kind, 0) + 1
        if stats.terminals:
            stats.after_terminal += 1
        if not stats.first_event_at:
            stats.first_event_at = now
            if not self._first_event.done():
                self._first_event.set_result(None)
        if kind == "status":
            try:
                status = json.loads(data).get("status")
            except ValueError:
                stats.error = "unparseable status event"
                return
            if status in TERMINAL:
                stats.terminals += 1
                if not stats.terminal_at:
                    stats.terminal_at = now

    # -- helpers

    def close(self) -> None:
        self.closing_on_purpose = True
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
        self._resolve()

    def _resolve(self) -> None:
        for future in (self._first_event, self._ended):
            if not future.done():
                future.set_result(None)


def events_request(task_id: str, port: int, api_key: str) -> bytes:
    return (
        f"GET /v1/tasks/{task_id}/events HTTP/1.1\r\n"
        f"Host: {HOST}:{port}\r\n"
        f"Authorization: Bearer {api_key}\r\n"
        "Accept: text/event-stream\r\n"
        "Cache-Control: no-cache\r\n\r\n"
    ).encode()


# --------------------------------------------------------------------------- measurements


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (KiB) and the thread count of a process."""
    wanted = {"VmRSS", "VmHWM", "Threads"}
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in wanted:
            values[key] = int(value.split()[0])
    return values


def open_files_limit(pid: int) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return f"soft {soft}, hard {hard}"
    return "unknown"


def open_fds(pid: int) -> tuple[int, int]:
    """(open file descriptors, of which sockets) of a process."""
    total = sockets = 0
    for name in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{name}")
            total += 1
            sockets += target.startswith("socket:")
    return total, sockets


def raise_nofile() -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else 1_048_576
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


@dataclass
class Memory:
    rss_kib: int
    hwm_kib: int
    threads: int
    fds: int
    sockets: int

    @classmethod
    def of(cls, pid: int) -> Memory:
        status = proc_status(pid)
        return cls(status["VmRSS"], status["VmHWM"], status["Threads"], *open_fds(pid))

    def text(self) -> str:
        return (
            f"VmRSS {self.rss_kib / 1024:.1f} MiB, VmHWM {self.hwm_kib / 1024:.1f} MiB, "
            f"{self.threads} threads, {self.fds} open fds ({self.sockets} sockets)"
        )


@dataclass
class Outcome:
    streams: list[StreamStats] = field(default_factory=list)
    open_seconds: float = 0.0
    idle_seconds: float = 0.0
    idle_server_cpu_s: float = 0.0
    idle_client_cpu_s: float = 0.0
    idle_comments: int = 0
    cancel_statuses: dict[int, int] = field(default_factory=dict)
    cancel_sent: dict[str, float] = field(default_factory=dict)
    cancel_answered: dict[str, float] = field(default_factory=dict)
    all_closed_seconds: float = float("nan")
    memory: dict[str, Memory] = field(default_factory=dict)


# --------------------------------------------------------------------------- the run


async def drive(
    *,
    port: int,
    api_key: str,
    task_ids: list[str],
    streams: int,
    open_concurrency: int,
    idle_seconds: float,
    server_pid: int,
) -> Outcome:
    loop = asyncio.get_running_loop()
    outcome = Outcome()
    gate = asyncio.Semaphore(open_concurrency)
    protocols: list[SSEStream] = []
    ended: list[asyncio.Future[None]] = []
    requests = {task_id: events_request(task_id, port, api_key) for task_id in task_ids}

    async def open_one(index: int) -> None:
        task_id = task_ids[index % len(task_ids)]
        stats = StreamStats(task_id)
        outcome.streams.append(stats)
        first: asyncio.Future[None] = loop.create_future()
        done: asyncio.Future[None] = loop.create_future()
        ended.append(done)
        async with gate:
            stats.started_at = time.perf_counter()
            try:
                _, protocol = await asyncio.wait_for(
                    loop.create_connection(
                        lambda: SSEStream(requests[task_id], stats, first, done), HOST, port
                    ),
                    OPEN_TIMEOUT_S,
                )
            except (OSError, TimeoutError) as exc:
                stats.error = f"connect failed: {exc!r}"
                done.set_result(None)
                return
            protocols.append(protocol)
            await asyncio.wait([first], timeout=OPEN_TIMEOUT_S)
            if not stats.first_event_at and not stats.error:
                stats.error = "no first event within the open timeout"

    outcome.memory["before streams"] = Memory.of(server_pid)
    started = time.perf_counter()
    await asyncio.gather(*(open_one(index) for index in range(streams)))
    firsts = [s.first_event_at for s in outcome.streams if s.first_event_at]
    outcome.open_seconds = (max(firsts) - started) if firsts else float("nan")

    await asyncio.sleep(SETTLE_S)
    comments_before = sum(s.comments for s in outcome.streams)
    cpu_before = (_cpu_seconds(server_pid), own_cpu_seconds())
    idle_started = time.perf_counter()
    await asyncio.sleep(idle_seconds)
    outcome.idle_seconds = time.perf_counter() - idle_started
    outcome.idle_server_cpu_s = _cpu_seconds(server_pid) - cpu_before[0]
    outcome.idle_client_cpu_s = own_cpu_seconds() - cpu_before[1]
    outcome.idle_comments = sum(s.comments for s in outcome.streams) - comments_before
    outcome.memory["all streams open"] = Memory.of(server_pid)

    # Cancel every task at once; each stream's latency counts from its own task's request.
    async with httpx.AsyncClient(
        base_url=f"http://{HOST}:{port}",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=30.0,
    ) as client:

        async def cancel(task_id: str) -> None:
            outcome.cancel_sent[task_id] = time.perf_counter()
            try:
                response = await client.post(f"/v1/tasks/{task_id}/cancel")
                code = response.status_code
            except httpx.HTTPError:
                code = 0
            outcome.cancel_answered[task_id] = time.perf_counter()
            outcome.cancel_statuses[code] = outcome.cancel_statuses.get(code, 0) + 1

        first_cancel = time.perf_counter()
        await asyncio.gather(*(cancel(task_id) for task_id in task_ids))
        if ended:
            await asyncio.wait(ended, timeout=CLOSE_TIMEOUT_S)
    last_end = [s.ended_at for s in outcome.streams if s.ended_at]
    if last_end and all(s.ended_at for s in outcome.streams):
        outcome.all_closed_seconds = max(last_end) - first_cancel
    for protocol in protocols:  # any stream still open after the timeout
        if not protocol.stats.ended_at and not protocol.stats.error:
            protocol.stats.error = "not ended within the close timeout"
        protocol.close()
    await asyncio.sleep(2.0)  # let the server release what the streams held
    outcome.memory["after streams closed"] = Memory.of(server_pid)
    return outcome


def run_drive(client_cpu: int | None, **kwargs: Any) -> Outcome:
    previous = os.sched_getaffinity(0)
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})
    try:
        coroutine = drive(**kwargs)
        if importlib.util.find_spec("uvloop") is not None:
            import uvloop

            return uvloop.run(coroutine)
        return asyncio.run(coroutine)
    finally:
        os.sched_setaffinity(0, previous)


def submit_tasks(base: str, api_key: str, count: int) -> list[str]:
    headers = {"Authorization": f"Bearer {api_key}"}
    task_ids: list[str] = []
    with httpx.Client(base_url=base, headers=headers, timeout=30.0) as client:
        for _ in range(count):
            response = client.post("/v1/async/videos/generations", json=SUBMIT_BODY)
            response.raise_for_status()
            task_ids.append(response.json()["id"])
    return task_ids


# --------------------------------------------------------------------------- report


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def render(
    outcome: Outcome,
    *,
    streams: int,
    tasks: int,
    machine: list[tuple[str, str]],
    notes: list[str],
    log_problems: list[str],
) -> str:
    all_streams = outcome.streams
    opened = [s for s in all_streams if s.first_event_at]
    to_first = [s.first_event_at - s.started_at for s in opened]
    to_terminal = [
        s.terminal_at - outcome.cancel_sent[s.task_id]
        for s in all_streams
        if s.terminal_at and s.task_id in outcome.cancel_sent
    ]
    to_end = [
        s.ended_at - outcome.cancel_sent[s.task_id]
        for s in all_streams
        if s.ended_at and s.task_id in outcome.cancel_sent
    ]
    bad_terminal = sum(1 for s in all_streams if s.terminals != 1)
    after_terminal = sum(s.after_terminal for s in all_streams)
    errors: dict[str, int] = {}
    for s in all_streams:
        if s.error:
            key = s.error.split(" (", 1)[0]
            errors[key] = errors.get(key, 0) + 1
    kinds: dict[str, int] = {}
    for s in all_streams:
        for kind, count in s.events.items():
            kinds[kind] = kinds.get(kind, 0) + count
    idle_cpu = outcome.idle_server_cpu_s / outcome.idle_seconds if outcome.idle_seconds else 0.0
    client_cpu = outcome.idle_client_cpu_s / outcome.idle_seconds if outcome.idle_seconds else 0.0
    memory = outcome.memory
    before, held = memory["before streams"], memory["all streams open"]
    per_stream_kib = (held.rss_kib - before.rss_kib) / len(opened) if opened else float("nan")
    ok = (
        len(opened) == streams >= GOAL_STREAMS
        and bad_terminal == 0
        and not errors
        and len(to_end) == streams
    )

    out: list[str] = [f"- {key}: {value}" for key, value in machine]
    out.append("")
    out.append(
        "| streams | opened (first event) | open all s | first event p50 / p99 ms "
        "| idle server CPU | cancel → terminal p50 / p99 / max ms "
        "| cancel → closed p50 / p99 / max ms | terminal ≠ 1 |"
    )
    out.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
    out.append(
        f"| {streams:,} | {len(opened):,} | {outcome.open_seconds:.2f} "
        f"| {_ms(percentile(to_first, 0.5))} / {_ms(percentile(to_first, 0.99))} "
        f"| {idle_cpu:.1%} "
        f"| {_ms(percentile(to_terminal, 0.5))} / {_ms(percentile(to_terminal, 0.99))} / "
        f"{_ms(max(to_terminal, default=float('nan')))} "
        f"| {_ms(percentile(to_end, 0.5))} / {_ms(percentile(to_end, 0.99))} / "
        f"{_ms(max(to_end, default=float('nan')))} "
        f"| {bad_terminal} |"
    )
    out.append("")
    out.append(f"- streams: {streams:,} over {tasks} queued tasks (round-robin)")
    out.append(
        f"- opened and received their first event: {len(opened):,} / {streams:,}, all within "
        f"{outcome.open_seconds:.2f} s of the first connect"
    )
    out += [f"- server memory {label}: {m.text()}" for label, m in memory.items()]
    out.append(
        f"- server RSS growth with all streams open: "
        f"{(held.rss_kib - before.rss_kib) / 1024:.1f} MiB (~{per_stream_kib:.0f} KiB per stream)"
    )
    out.append(
        f"- idle with all streams open: {outcome.idle_seconds:.1f} s, server CPU "
        f"{outcome.idle_server_cpu_s:.2f} s ({idle_cpu:.1%} of one core), client CPU "
        f"{client_cpu:.1%} of one core, {outcome.idle_comments:,} heartbeat comments received"
    )
    cancel_codes = ", ".join(f"{code}: {n}" for code, n in sorted(outcome.cancel_statuses.items()))
    cancel_times = [
        outcome.cancel_answered[task_id] - sent
        for task_id, sent in outcome.cancel_sent.items()
        if task_id in outcome.cancel_answered
    ]
    out.append(
        f"- cancel responses (HTTP status: count): {cancel_codes}; answered in "
        f"{_ms(min(cancel_times, default=float('nan')))} to "
        f"{_ms(max(cancel_times, default=float('nan')))} ms"
    )
    out.append(
        f"- all streams ended {outcome.all_closed_seconds:.3f} s after the first cancel request"
        if outcome.all_closed_seconds == outcome.all_closed_seconds
        else "- not every stream ended"
    )
    out.append(f"- events received (kind: count): {kinds}")
    out.append(
        f"- streams with a terminal event count other than one: {bad_terminal}; events after a "
        f"terminal one: {after_terminal}"
    )
    out.append(f"- stream errors: {errors or 'none'}")
    out.append(f"- server log warnings/errors: {len(log_problems)}")
    out += [f"    {line}" for line in log_problems[:10]]
    out += [f"- {note}" for note in notes]
    verdict = "met" if ok else "missed"
    out.append(f"- goal: >= {GOAL_STREAMS:,} concurrent event streams held open -> {verdict}")
    return "\n".join(out)


def _log_problems(log_path: Path) -> list[str]:
    with contextlib.suppress(OSError):
        lines = log_path.read_text(errors="replace").splitlines()
        markers = ("ERROR", "WARNING", "Traceback", "Too many open files")
        return [line for line in lines if any(marker in line for marker in markers)]
    return []


def benchmark(args: argparse.Namespace) -> int:
    nofile = raise_nofile()
    load_before = load_average()
    pin = args.pin and len(os.sched_getaffinity(0)) >= 2
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = (cpus[0], cpus[1]) if pin else (None, None)
    with tempfile.TemporaryDirectory(prefix="framegate-sse-") as tmp:
        workdir = Path(tmp)
        env = {
            **os.environ,
            "FRAMEGATE_DATA_DIR": str(workdir / "data"),
            "FRAMEGATE_DATABASE_URL": "",
            "FRAMEGATE_WORKER_CONCURRENCY": "0",
            "FRAMEGATE_ENV": "development",
            "FRAMEGATE_LOG_LEVEL": "info",
            "FRAMEGATE_DEFAULT_REQUESTS_PER_MINUTE": "1000000",
            "FRAMEGATE_DEFAULT_MAX_CONCURRENT_VIDEOS": "1000",
        }
        if args.ping_seconds is not None:
            env["FRAMEGATE_SSE_PING_SECONDS"] = str(args.ping_seconds)
        else:
            env.pop("FRAMEGATE_SSE_PING_SECONDS", None)
        for name in ("FRAMEGATE_SECRET_KEY", "FRAMEGATE_PUBLIC_URL", "FRAMEGATE_CATALOG_FILE"):
            env.pop(name, None)
        api_key = _create_account(env)
        argv = [sys.executable, "-m", "framegate", "serve", "--host", HOST]
        log_path = workdir / "framegate.log"
        with running("framegate", argv, env, log_path, server_cpu) as server:
            pid = server.process.pid
            server_nofile = open_files_limit(pid)
            task_ids = submit_tasks(f"http://{HOST}:{server.port}", api_key, args.tasks)
            outcome = run_drive(
                client_cpu,
                port=server.port,
                api_key=api_key,
                task_ids=task_ids,
                streams=args.streams,
                open_concurrency=args.open_concurrency,
                idle_seconds=args.idle_seconds,
                server_pid=pid,
            )
            alive = server.process.poll() is None
        log_problems = _log_problems(log_path)
    machine = [
        *machine_head(memory=False),
        ("server", server_stack()),
        (LOAD_BEFORE, load_before),
        (
            "open files limit (RLIMIT_NOFILE)",
            f"benchmark soft {nofile[0]}, hard {nofile[1]}; server {server_nofile}",
        ),
    ]
    pinning = (
        f"server pinned to CPU {server_cpu}, client to CPU {client_cpu}" if pin else "no pinning"
    )
    ping = (
        f"{args.ping_seconds:g} s (FRAMEGATE_SSE_PING_SECONDS)"
        if args.ping_seconds is not None
        else "the default (15 s)"
    )
    notes = [
        f"client: raw asyncio HTTP/1.1 connections in the benchmark process, at most "
        f"{args.open_concurrency} waiting for their first event at once; {pinning}",
        f"heartbeat interval: {ping}; SQLite in a temporary data directory; "
        "FRAMEGATE_WORKER_CONCURRENCY=0 (tasks stay queued until cancelled)",
        "cancel → terminal / closed: from the stream's task's cancel request to its terminal "
        "status event / to the end of its response; all tasks cancelled at once",
        f"server still running at the end: {alive}",
    ]
    print(
        render(
            outcome,
            streams=args.streams,
            tasks=args.tasks,
            machine=machine,
            notes=notes,
            log_problems=log_problems,
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--streams", type=int, default=1000, help="concurrent event streams")
    parser.add_argument("--tasks", type=int, default=10, help="queued tasks the streams watch")
    parser.add_argument(
        "--idle-seconds", type=float, default=10.0, help="hold all streams open this long"
    )
    parser.add_argument(
        "--open-concurrency",
        type=int,
        default=100,
        help="streams connecting or awaiting their first event at once",
    )
    parser.add_argument(
        "--ping-seconds", type=float, default=None, help="FRAMEGATE_SSE_PING_SECONDS for the server"
    )
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pin the server and this process to different CPUs (when there are two)",
    )
    args = parser.parse_args(argv)
    if args.streams < 1 or args.tasks < 1 or args.open_concurrency < 1:
        parser.error("--streams, --tasks and --open-concurrency must be at least 1")
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
