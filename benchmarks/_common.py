"""Helpers shared by the benchmark scripts (not a benchmark itself).

The machine a run was on (CPU model, memory, load average), CPU time and percentiles,
throwaway PostgreSQL databases, free ports, and subprocesses started in their own process
groups, waited for until they are healthy and always stopped on the way out.

The scripts run as ``python benchmarks/<name>.py``, which puts this directory first on
``sys.path``, and import it as ``_common`` (the worker subprocesses that a script starts
from itself too). Nothing of framegate's is imported at module level.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HOST = "127.0.0.1"
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_BASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432"
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0
# The virtualenv's own `framegate`, whatever PATH says.
FRAMEGATE = shutil.which("framegate", path=str(Path(sys.executable).parent)) or "framegate"
LOAD_BEFORE = "load average before the run (1, 5, 15 min)"
LOAD_AFTER = "load average after the run"


# --------------------------------------------------------------------------- machine


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_gib() -> str:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.0f} GiB"
    return "unknown"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as the reports print them."""
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def machine_head(*, memory: bool = True) -> list[tuple[str, str]]:
    """The first rows of a report's machine list: platform, CPU (and memory), Python."""
    cpu = f"{cpu_model()}, {os.cpu_count()} cores"
    if memory:
        cpu += f", {memory_gib()}"
    return [
        ("platform", platform.platform()),
        ("CPU", cpu),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
    ]


# --------------------------------------------------------------------------- measuring


def own_cpu_seconds() -> float:
    """User + system CPU seconds of this process (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def tree_cpu_seconds(*pids: int) -> float:
    """User + system CPU seconds of these processes and their children (0 for those gone)."""
    import psutil

    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            process = psutil.Process(pid)
            for p in [process, *process.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    times = p.cpu_times()
                    total += times.user + times.system
    return total


def percentile(values: list[float], q: float) -> float:
    """The value at rank round(q x (n - 1)) of the sorted values (nan when there are none)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def percentile_ms(values: list[float], q: float) -> float:
    """``percentile`` of values in seconds, in milliseconds."""
    return percentile(values, q) * 1000.0


# --------------------------------------------------------------------------- PostgreSQL


async def pg_admin(statement: str = "") -> str:
    """Run one statement (if any) on the server's ``postgres`` database; its version."""
    import asyncpg

    connection = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        if statement:
            await connection.execute(statement)
        version: str = await connection.fetchval("SHOW server_version")
        return version
    finally:
        await connection.close()


@contextlib.contextmanager
def throwaway_database() -> Iterator[tuple[str, str]]:
    """Create a ``framegate_bench_*`` database, yield (its asyncpg URL for
    ``FRAMEGATE_DATABASE_URL``, the server's version), and always drop it after."""
    name = f"framegate_bench_{uuid.uuid4().hex[:12]}"
    version = asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_BASE_URL}/{name}", version
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def venv_path() -> str:
    """PATH with the virtualenv's bin directory first (``framegate``'s own CLI)."""
    return f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def wait_healthy(url: str, check_alive: Callable[[], None], timeout: float, failure: str) -> None:
    """Until ``GET url/healthz`` answers 200; ``check_alive`` raises once the server is gone,
    and after ``timeout`` seconds RuntimeError(failure)."""
    deadline = time.monotonic() + timeout
    while True:
        check_alive()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(failure)
        time.sleep(0.1)


def stop_groups(
    processes: Iterable[subprocess.Popen[bytes]], timeout: float = STOP_TIMEOUT_S
) -> None:
    """SIGTERM each process's group (uvicorn's and Procrastinate's graceful stop), up to
    ``timeout`` seconds for all of them to exit, then SIGKILL of each group."""
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)


@dataclass
class Processes:
    """Subprocesses, each in a session (process group) of its own and logging to
    ``log_dir/<name>.log``; always stopped by ``stop``."""

    env: dict[str, str]
    log_dir: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    def start(self, name: str, argv: list[str], label: str = "") -> subprocess.Popen[bytes]:
        """Start ``argv``; ``label`` (default: ``name``) names it in ``check_alive``'s error."""
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        self.logs.append(log_path)
        self.labels.append(label or name)
        return process

    def check_alive(self) -> None:
        """RuntimeError with the end of its log if any of them exited."""
        for process, log, label in zip(self.processes, self.logs, self.labels, strict=True):
            if process.poll() is not None:
                raise RuntimeError(f"{label} exited ({process.returncode}):\n{log_tail(log)}")

    def stop(self) -> None:
        stop_groups(self.processes)
        self.processes.clear()
        self.logs.clear()
        self.labels.clear()


def start_serve(
    procs: Processes, name: str, port: int = 0, label: str = ""
) -> tuple[str, subprocess.Popen[bytes]]:
    """``framegate serve`` on loopback (``port``, or a free one), started by ``procs`` as
    ``name``; its URL and process once ``/healthz`` answers."""
    port = port or free_port()
    process = procs.start(
        name, [FRAMEGATE, "serve", "--host", HOST, "--port", str(port)], label=label
    )
    url = f"http://{HOST}:{port}"
    wait_healthy(url, procs.check_alive, READY_TIMEOUT_S, f"{label or name} not healthy in time")
    return url, process


# --------------------------------------------------------------------------- main


def exit_on_sigterm() -> None:
    """SIGTERM raises SystemExit, so that it unwinds through every clean-up, as Ctrl-C does."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def in_workdir(keep: Path | None, prefix: str, body: Callable[[Path], None]) -> None:
    """``body(directory)``: ``keep`` (created if need be, left behind) or a temporary
    directory named ``prefix*`` (deleted after)."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        body(keep.resolve())
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        body(Path(tmp))
