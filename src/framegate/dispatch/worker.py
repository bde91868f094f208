"""The one job path: run a claimed task through its engine, store outputs, finalize."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from framegate.catalog.schemas import ModelRoute
from framegate.catalog.service import Catalog
from framegate.dispatch.upstream import UpstreamOptions, UpstreamStep, signed_input_url
from framegate.engines.base import (
    Engine,
    EngineError,
    GenerationRequest,
    GenerationResult,
    OutputFile,
    TaskCancelledError,
)
from framegate.engines.registry import EngineRegistry
from framegate.kit.images import decode_image
from framegate.kit.safe_fetch import FetchPolicy
from framegate.models import Task, TaskType
from framegate.storage.base import Storage, attempt_prefix
from framegate.tasks.lifecycle import TaskLifecycle

log = logging.getLogger(__name__)

_EXTENSIONS = {"video/mp4": "mp4", "image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


@dataclass
class _Progress:
    """Written by the engine thread, read by the heartbeat coroutine."""

    fraction: float = 0.0
    lost: bool = False


class TaskRunner:
    def __init__(
        self,
        *,
        catalog: Catalog,
        engines: EngineRegistry,
        storage: Storage,
        lifecycle: TaskLifecycle,
        scratch_dir: Path,
        max_image_pixels: int,
        heartbeat_seconds: float = 0.5,
        upstream: UpstreamOptions | None = None,
    ) -> None:
        self._catalog = catalog
        self._engines = engines
        self._storage = storage
        self._lifecycle = lifecycle
        self._scratch_dir = scratch_dir
        self._max_image_pixels = max_image_pixels
        self._heartbeat_seconds = heartbeat_seconds
        self._upstream_options = upstream or UpstreamOptions(
            max_poll_seconds=30.0, download_policy=FetchPolicy()
        )
        self._upstream = UpstreamStep(
            catalog=catalog, lifecycle=lifecycle, options=self._upstream_options
        )

    def serving_route(self, task: Task) -> ModelRoute | None:
        """The route that serves the task now: its model, or the fallback it moved to."""
        name = (task.upstream or {}).get("route") or task.model
        return self._catalog.get(name)

    async def run(self, task: Task, worker_id: str) -> None:
        route = self.serving_route(task)
        remote = self._engines.remote(route.engine) if route else None
        local = self._engines.local(route.engine) if route else None
        if route is None or (remote is None and local is None):
            await self._lifecycle.fail(
                task,
                "model_unavailable",
                f"Model {task.model!r} is no longer configured on this installation.",
                worker_id=worker_id,
            )
            return
        # Vendor tasks start from the progress they had when they were parked.
        state = _Progress(fraction=task.progress / 100)
        # Each attempt writes under its own prefix, so an attempt that lost its lease can
        # never overwrite or delete the outputs of the attempt that completed the task.
        prefix = attempt_prefix(task)
        completed = False
        workdir: Path | None = None
        heartbeat = asyncio.create_task(self._heartbeat(task, worker_id, state))
        try:
            workdir = await asyncio.to_thread(self._make_workdir, task.id)
            request = await self._request(task, route.settings)
            if local is not None:
                result = await self._generate(local, request, workdir, state)
            elif remote is not None:
                outputs = await self._upstream.run(task, worker_id, route, remote, request, workdir)
                if outputs is None:
                    return
                result = GenerationResult(outputs)
            if state.lost:
                raise TaskCancelledError
            stored = await self._store(task, prefix, result)
            price = (task.upstream or {}).get("price", task.credits_reserved)
            completed = await self._lifecycle.complete(
                task, worker_id, stored, price, served_by=route.id
            )
        except TaskCancelledError:
            log.info("task %s stopped: no longer ours (cancelled or reclaimed)", task.id)
        except asyncio.CancelledError:
            # The process is shutting down: stop the engine and hand the task back at once
            # (without using up an attempt) instead of leaving it to the lease reaper.
            state.lost = True
            await self._lifecycle.hand_back(task, worker_id)
            raise
        except EngineError as exc:
            await self._handle_engine_error(task, worker_id, exc)
        except Exception:
            # The details go to the log, not to the client: they can name paths or queries.
            log.exception("task %s failed unexpectedly", task.id)
            await self._lifecycle.fail(
                task,
                "engine_error",
                f"Generation failed because of an internal error (reference {task.id}); "
                "the credits were refunded.",
                worker_id=worker_id,
            )
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            if not completed:
                with contextlib.suppress(Exception):
                    await self._storage.delete_prefix(prefix)
            if workdir is not None:
                await asyncio.to_thread(shutil.rmtree, workdir, True)

    def _make_workdir(self, task_id: str) -> Path:
        self._scratch_dir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{task_id}-", dir=self._scratch_dir))

    async def _generate(
        self, engine: Engine, request: GenerationRequest, workdir: Path, state: _Progress
    ) -> GenerationResult:
        def progress(fraction: float) -> None:
            state.fraction = min(1.0, max(state.fraction, fraction))

        return await engine.generate(request, workdir, progress, lambda: state.lost)

    async def _heartbeat(self, task: Task, worker_id: str, state: _Progress) -> None:
        renew_every = max(0.05, min(self._lifecycle.lease_seconds / 3, 10.0))
        last_renewal = 0.0
        last_sent = -1
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._heartbeat_seconds)
            # Engine progress maps to 0-99; 100 is reserved for the completed state.
            percent = min(99, int(state.fraction * 100))
            now = loop.time()
            if percent == last_sent and now - last_renewal < renew_every:
                continue
            try:
                ours = await self._lifecycle.renew(task, worker_id, percent)
            except Exception:
                log.exception("lease renewal failed for %s", task.id)
                continue
            last_sent, last_renewal = percent, now
            if not ours:
                state.lost = True
                return

    async def _request(self, task: Task, settings: dict[str, Any]) -> GenerationRequest:
        params = task.params
        image = await self._input_image(params.get("input_image_key"))
        last_image = await self._input_image(params.get("last_image_key"))
        is_video = task.type == TaskType.video_generation
        return GenerationRequest(
            task_id=task.id,
            kind="video" if is_video else "image",
            prompt=params["prompt"],
            negative_prompt=params.get("negative_prompt"),
            width=params["width"],
            height=params["height"],
            seed=params["seed"],
            duration=float(params.get("duration") or 0),
            fps=int(params.get("fps") or 0),
            num_frames=int(params.get("num_frames") or 0),
            input_image=image,
            last_image=last_image,
            input_image_url=signed_input_url(self._upstream_options, params.get("input_image_key")),
            last_image_url=signed_input_url(self._upstream_options, params.get("last_image_key")),
            camera_fixed=bool(params.get("camera_fixed")),
            n=int(params.get("n") or 1),
            settings=settings,
        )

    async def _input_image(self, key: str | None) -> Image.Image | None:
        if not key:
            return None
        data = await self._storage.get_bytes(key)
        return await asyncio.to_thread(decode_image, data, max_pixels=self._max_image_pixels)

    async def _store(self, task: Task, prefix: str, result: GenerationResult) -> dict[str, Any]:
        outputs = []
        for index, output in enumerate(result.outputs):
            outputs.append(await self._store_one(prefix, index, output))
        return {"outputs": outputs}

    async def _store_one(self, prefix: str, index: int, output: OutputFile) -> dict[str, Any]:
        stem = "video" if output.content_type.startswith("video/") else "image"
        ext = _EXTENSIONS.get(output.content_type, "bin")
        key = f"{prefix}{stem}-{index}.{ext}"
        size = await self._storage.put_file(key, output.path, output.content_type)
        item: dict[str, Any] = {
            "key": key,
            "content_type": output.content_type,
            "bytes": size,
            "width": output.width,
            "height": output.height,
        }
        if output.thumbnail_path is not None:
            thumbnail = f"{prefix}thumbnail-{index}.jpg"
            await self._storage.put_file(thumbnail, output.thumbnail_path, "image/jpeg")
            item["thumbnail_key"] = thumbnail
        if output.duration is not None:
            item.update(duration=output.duration, fps=output.fps, num_frames=output.num_frames)
        return item

    async def _handle_engine_error(self, task: Task, worker_id: str, exc: EngineError) -> None:
        if exc.retriable and task.attempts < self._lifecycle.max_attempts:
            log.warning("task %s: retriable engine error: %s", task.id, exc.message)
            await self._lifecycle.retry(task, exc.message, worker_id=worker_id)
            return
        await self._lifecycle.fail(task, exc.code, exc.message, worker_id=worker_id)
