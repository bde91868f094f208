"""The distributed set-up that distributed_dispatch.py and sse_fanout.py share (not a
benchmark itself): a catalog with one route served by the script's own local engine, the
environment of the processes, and the worker side, that is the script re-run with
``--worker`` as a ``ClusterWorker`` that exits once the benchmark process is gone.

Imported as ``_cluster`` (see ``_common``); nothing of framegate's at module level.
"""

from __future__ import annotations

import abc
import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from framegate.engines.base import (
        CancelCheck,
        GenerationRequest,
        GenerationResult,
        ProgressCallback,
    )


def write_catalog(path: Path, route_id: str, engine_name: str) -> None:
    """A catalog file (``FRAMEGATE_CATALOG_FILE``) with one video route on ``engine_name``."""
    catalog = {
        "routes": [
            {
                "id": route_id,
                "kind": "video",
                "engine": engine_name,
                "capabilities": {"text_to_video": True},
                "pricing": {"unit": "clip", "credits": {"480p": 1}},
            }
        ]
    }
    path.write_text(yaml.safe_dump(catalog))


def video_request(route_id: str) -> dict[str, Any]:
    """The body of a tiny clip's submit on the route."""
    return {"model": route_id, "prompt": route_id, "duration": 1, "size": "64x64", "fps": 8}


def cluster_env(data_dir: Path, database_url: str, catalog: Path, **extra: str) -> dict[str, str]:
    """This process's environment without its FRAMEGATE_* variables, plus the settings of a
    distributed installation on ``database_url`` (limits that never refuse), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEGATE_")}
    env.update(
        FRAMEGATE_DISPATCH="distributed",
        FRAMEGATE_DATABASE_URL=database_url,
        FRAMEGATE_DATA_DIR=str(data_dir),
        FRAMEGATE_CATALOG_FILE=str(catalog),
        # Set, so that no process generates one into the shared data directory.
        FRAMEGATE_SECRET_KEY=secrets.token_urlsafe(40),
        FRAMEGATE_ENV="development",
        FRAMEGATE_LOG_LEVEL="warning",
        FRAMEGATE_DEFAULT_MAX_CONCURRENT_VIDEOS="1000000",
        FRAMEGATE_DEFAULT_REQUESTS_PER_MINUTE="100000000",
        # Stopping a cluster between runs: idle workers, nothing to wait for.
        FRAMEGATE_WORKER_SHUTDOWN_SECONDS="5",
    )
    env.update(extra)
    return env


# --------------------------------------------------------------------------- worker side


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """The hidden options of a worker process (the script re-run by ``worker_argv``)."""
    parser.add_argument("--worker-max-seconds", type=float, default=1800.0, help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--parent-pid", type=int, default=0, help=argparse.SUPPRESS)


def worker_argv(script: Path, options: list[str], max_seconds: float) -> list[str]:
    """The command line of a worker process: ``script --worker`` with the script's own
    ``options``, watching this process."""
    return [
        sys.executable,
        str(script),
        "--worker",
        *options,
        "--parent-pid",
        str(os.getpid()),
        "--worker-max-seconds",
        str(max_seconds),
    ]


class BenchEngine(abc.ABC):
    """Base of the scripts' local engines: no model, always available. ``generate`` runs
    the subclass's ``work``, then writes a 16-byte "video" and thumbnail; ``note`` appends
    ``<fields TAB...>time.time()`` lines to a file of the worker process."""

    name: str

    def __init__(self, log_path: Path) -> None:
        self._log: IO[str] = log_path.open("a", buffering=1)

    def is_available(self, settings: Mapping[str, Any]) -> bool:
        return True

    def note(self, *fields: str) -> None:
        self._log.write("\t".join([*fields, f"{time.time():.6f}"]) + "\n")

    @abc.abstractmethod
    async def work(self, request: GenerationRequest, progress: ProgressCallback) -> None:
        """What the engine does for one task (each script's engine says)."""

    async def generate(
        self,
        request: GenerationRequest,
        workdir: Path,
        progress: ProgressCallback,
        cancelled: CancelCheck,
    ) -> GenerationResult:
        from framegate.engines.base import GenerationResult

        await self.work(request, progress)
        video, thumbnail = workdir / "video.mp4", workdir / "thumbnail.jpg"
        video.write_bytes(b"\0" * 16)
        thumbnail.write_bytes(b"\0" * 16)
        return GenerationResult.video(
            video,
            width=request.width,
            height=request.height,
            thumbnail_path=thumbnail,
            num_frames=request.num_frames,
            fps=request.fps,
        )

    def close(self) -> None:
        self._log.close()


async def _watch(parent_pid: int, max_seconds: float) -> None:
    """Return once the benchmark process is gone or the worker's time is up."""
    for _ in range(max(1, round(max_seconds / 0.5))):
        if os.getppid() != parent_pid:
            return
        await asyncio.sleep(0.5)


async def _serve(
    engine: BenchEngine, route_id: str, concurrency: int, parent_pid: int, max_seconds: float
) -> None:
    from framegate.config import Settings
    from framegate.dispatch.distributed import ClusterWorker, select_routes
    from framegate.engines.registry import EngineRegistry
    from framegate.runtime import Runtime

    settings = Settings()  # FRAMEGATE_* from the environment the benchmark set
    # The benchmark process (or its first API node) migrated the database already.
    runtime = await Runtime.create(settings, engines=EngineRegistry([engine]), migrate=False)
    try:
        worker = ClusterWorker(runtime, select_routes(runtime, [route_id]), concurrency)
        serving = asyncio.create_task(worker.run(), name="cluster-worker")
        watchdog = asyncio.create_task(_watch(parent_pid, max_seconds))
        await asyncio.wait({serving, watchdog}, return_when=asyncio.FIRST_COMPLETED)
        watchdog.cancel()
        if not serving.done():
            serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
    finally:
        await runtime.close()
        engine.close()


def run_worker(
    engine: BenchEngine, route_id: str, concurrency: int, parent_pid: int, max_seconds: float
) -> int:
    """A worker process: ``ClusterWorker(runtime, [route], concurrency)`` with ``engine``,
    settings from the environment, until the benchmark process is gone (or SIGTERM, or
    ``max_seconds``)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(_serve(engine, route_id, concurrency, parent_pid, max_seconds))
    return 0
