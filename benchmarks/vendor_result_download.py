"""Peak memory of downloading vendor results, held in memory versus streamed to disk.

    python benchmarks/vendor_result_download.py [--mib 60] [--concurrent 4]

A loopback server (its own process) serves a result of ``--mib`` MiB; for each way of
fetching it, a fresh process downloads ``--concurrent`` copies at once, as several workers
finishing vendor tasks together would, and reports how far its peak RSS rose during the
downloads. ``in-memory`` is what vendor downloads did before (``fetch_url`` and then
writing the bytes); ``streamed`` is ``fetch_to_file``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from framegate.kit.safe_fetch import FetchPolicy, fetch_to_file, fetch_url, parse_networks

HOST = "127.0.0.3"
BLOCK = bytes(range(256)) * 256  # 64 KiB
MiB = 1024 * 1024


async def serve(size: int) -> None:
    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        # /warm-up: one block, so that warming up does not already raise the peak.
        left = len(BLOCK) if request.startswith(b"GET /warm-up ") else size
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {left}\r\n\r\n".encode())
        while left > 0:
            writer.write(BLOCK[:left])
            left -= len(BLOCK)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(on_connect, HOST, 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / MiB


async def download(mode: str, base: str, size: int, copies: int, directory: Path) -> None:
    policy = FetchPolicy(
        allow_networks=parse_networks(f"{HOST}/32"), max_bytes=size, total_timeout=600.0
    )

    async def one(url: str, destination: Path) -> None:
        if mode == "streamed":
            await fetch_to_file(url, destination, policy, param="result")
        else:
            fetched = await fetch_url(url, policy, param="result")
            await asyncio.to_thread(destination.write_bytes, fetched.content)

    # Warm up (TLS context, thread pool, imports) so the figure is the downloads'.
    await one(f"{base}/warm-up", directory / "warm-up")
    before = peak_rss_mib()
    started = time.perf_counter()
    await asyncio.gather(*(one(f"{base}/result", directory / f"{i}") for i in range(copies)))
    elapsed = time.perf_counter() - started
    print(f"{mode:>9}: peak RSS +{peak_rss_mib() - before:7.1f} MiB  ({elapsed:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=60)
    parser.add_argument("--concurrent", type=int, default=4)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--fetch", nargs=2, metavar=("MODE", "BASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = args.mib * MiB
    if args.serve:
        asyncio.run(serve(args.serve))
        return
    if args.fetch:
        with tempfile.TemporaryDirectory() as directory:
            mode, base = args.fetch
            asyncio.run(download(mode, base, size, args.concurrent, Path(directory)))
        return

    print(f"{platform.node()}: {platform.platform()}, Python {platform.python_version()}")
    print(f"{os.cpu_count()} CPUs; {args.concurrent} x {args.mib} MiB results at once")
    me = [sys.executable, __file__, "--mib", str(args.mib)]
    server = subprocess.Popen([*me, "--serve", str(size)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        base = f"http://{HOST}:{server.stdout.readline().strip()}"
        for mode in ("in-memory", "streamed"):
            command = [*me, "--concurrent", str(args.concurrent), "--fetch", mode, base]
            subprocess.run(command, check=True)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
