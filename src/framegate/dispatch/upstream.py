"""Upstream (vendor) tasks: one short step per claim, parked in between.

A worker that claims a task routed to a vendor engine does one step and lets go:

- not yet submitted: ``submit`` upstream, store the vendor's job id on the task, park it;
- submitted: one ``poll``; still running → park again (backing off while nothing changes);
  succeeded → download the video into framegate's storage and complete the task;
  failed → fail it with the vendor's mapped code and a full refund, or move it to the
  route's next fallback.

Parked tasks stay ``processing`` for clients, hold no worker slot and no lease: their
``lease_expires_at`` is the time of their next poll, when any worker claims them again
(``TaskLifecycle.claim_due``). A vendor 429 or 5xx is retried later on the same route (a
5xx also counts against the route's circuit breaker and, before the job exists upstream,
moves the task to a healthy fallback when there is one).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.video.reformatter import Interpolation

from framegate.catalog.schemas import ModelRoute
from framegate.catalog.service import Catalog
from framegate.engines.base import (
    MODERATION_BLOCKED,
    UPSTREAM_ERROR,
    UPSTREAM_INVALID,
    UPSTREAM_RATE_LIMITED,
    UPSTREAM_UNAVAILABLE,
    GenerationRequest,
    OutputFile,
    RemoteEngine,
    UpstreamError,
    UpstreamJob,
    UpstreamStatus,
)
from framegate.engines.encode import encode_mp4, save_jpeg
from framegate.engines.registry import EngineRegistry
from framegate.exceptions import FramegateError
from framegate.kit.images import image_decoding
from framegate.kit.safe_fetch import FetchPolicy
from framegate.kit.time import as_utc, utcnow
from framegate.models import Task
from framegate.storage.links import FileLinks
from framegate.tasks.lifecycle import TaskLifecycle

log = logging.getLogger(__name__)

_THUMBNAIL_SIDE = 512
# Progress shown while a vendor that reports none works: elapsed over the estimate, capped.
_ESTIMATE_CAP = 0.9


@dataclass(frozen=True)
class UpstreamOptions:
    # Polls start at the engine's ``poll_interval`` and back off up to this.
    max_poll_seconds: float
    download_policy: FetchPolicy
    public_url: str = ""
    links: FileLinks | None = None
    # Frames larger than this are not decoded (the same cap as input images).
    max_pixels: int = 40_000_000
    # Unused: the base interval is each engine's ``poll_interval`` (which the operator's
    # FRAMEGATE_VENDOR_POLL_SECONDS sets when given). Kept while runtime.py passes it.
    poll_seconds: float | None = None


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: int
    num_frames: int
    duration: float
    is_h264_mp4: bool


class _ParamsShape:
    """A stored task's parameters, as the catalog's planner reads a request."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.duration: int | None = params.get("duration")
        self.size: str | None = params.get("size")
        self.resolution: str | None = None
        self.aspect_ratio: str | None = None
        self.fps: int | None = params.get("fps")
        self.num_frames: int | None = None
        self.input_image: str | None = params.get("input_image")
        self.last_image: str | None = params.get("last_image")
        self.negative_prompt: str | None = params.get("negative_prompt")
        self.seed: int | None = params.get("seed")


class UpstreamStep:
    def __init__(
        self,
        *,
        catalog: Catalog,
        lifecycle: TaskLifecycle,
        options: UpstreamOptions,
    ) -> None:
        self._catalog = catalog
        self._lifecycle = lifecycle
        self._options = options

    async def run(
        self,
        task: Task,
        worker_id: str,
        route: ModelRoute,
        engine: RemoteEngine,
        request: GenerationRequest,
        workdir: Path,
    ) -> list[OutputFile] | None:
        """One step. Returns the outputs when the video is ready (the caller stores them
        and completes the task); None when the task was parked, moved or failed."""
        state = dict(task.upstream or {})
        state.setdefault("route", route.id)
        health = self._catalog.health
        try:
            if task.engine_task_id is None:
                if not await health.allow(route.id):
                    await self._unavailable(task, worker_id, route, engine, state)
                    return None
                job = await engine.submit(request)
                state.update(job=job.data, polls=0, retries=0, interval=engine.poll_interval)
                state["submitted_at"] = utcnow().isoformat()
                log.info("task %s submitted to %s as %s", task.id, route.id, job.id)
                parked = await self._park(task, worker_id, state, job.id, engine.poll_interval, 1)
                if not parked:
                    # Cancelled (or reclaimed) while the vendor was answering: the job
                    # would otherwise run, and bill, with nobody waiting for it.
                    await self._cancel_orphan(engine, job, request)
                return None
            job = UpstreamJob(task.engine_task_id, dict(state.get("job") or {}))
            status = await engine.poll(job, request)
        except UpstreamError as exc:
            await self._on_error(
                task, worker_id, route, engine, state, exc, submitted=bool(task.engine_task_id)
            )
            return None
        state["retries"] = 0
        if status.state == "pending":
            await self._pending(task, worker_id, engine, state, status)
            return None
        if status.state == "failed":
            error = status.error or UpstreamError(f"{route.id}: the job failed upstream")
            await self._on_error(
                task, worker_id, route, engine, state, error, submitted=True, job_failed=True
            )
            return None
        if not status.video_url:
            error = UpstreamError(f"{route.id}: the vendor reported success without a video")
            await self._on_error(
                task, worker_id, route, engine, state, error, submitted=True, job_failed=True
            )
            return None
        try:
            output = await self._download(engine, status.video_url, workdir)
        except UpstreamError as exc:
            await self._on_error(task, worker_id, route, engine, state, exc, submitted=True)
            return None
        await health.success(route.id)
        return [output]

    # -- outcomes ------------------------------------------------------------------------

    async def _pending(
        self,
        task: Task,
        worker_id: str,
        engine: RemoteEngine,
        state: dict[str, Any],
        status: UpstreamStatus,
    ) -> None:
        state["polls"] = int(state.get("polls", 0)) + 1
        if status.progress is not None:
            fraction = status.progress
        else:
            fraction = self._estimated_fraction(task, state)
        percent = max(task.progress, min(95, int(fraction * 100)))
        # Back off while nothing visibly changes; poll promptly again when it does.
        base = engine.poll_interval
        interval = float(state.get("interval") or base)
        interval = base if percent > task.progress else interval * 1.5
        interval = min(interval, self._options.max_poll_seconds)
        if status.poll_after is not None:
            interval = max(base, min(status.poll_after, self._options.max_poll_seconds))
        state["interval"] = interval
        await self._park(task, worker_id, state, task.engine_task_id, interval, percent)

    def _estimated_fraction(self, task: Task, state: dict[str, Any]) -> float:
        submitted = state.get("submitted_at")
        if not submitted or task.estimated_seconds <= 0:
            return 0.0
        elapsed = (utcnow() - as_utc(datetime.fromisoformat(submitted))).total_seconds()
        return min(_ESTIMATE_CAP, elapsed / task.estimated_seconds)

    async def _on_error(
        self,
        task: Task,
        worker_id: str,
        route: ModelRoute,
        engine: RemoteEngine,
        state: dict[str, Any],
        exc: UpstreamError,
        *,
        submitted: bool,
        job_failed: bool = False,
    ) -> None:
        health = self._catalog.health
        if exc.code == MODERATION_BLOCKED:
            await self._fail(task, worker_id, exc)
            return
        if exc.retriable and not job_failed:
            if exc.code != UPSTREAM_RATE_LIMITED:
                await health.failure(route.id)
                # Before the job exists upstream, a healthy fallback can take it now.
                if not submitted and await self._fall_back(task, worker_id, route, state, exc):
                    return
            retries = int(state.get("retries", 0)) + 1
            state["retries"] = retries
            delay = exc.retry_after
            if delay is None:
                delay = min(
                    self._options.max_poll_seconds, engine.poll_interval * 2 ** (retries - 1)
                )
            log.warning(
                "task %s: %s on %s (%s), retrying in %.1f s",
                task.id,
                exc.code,
                route.id,
                exc.message,
                delay,
            )
            await self._park(task, worker_id, state, task.engine_task_id, delay, task.progress)
            return
        if exc.code != UPSTREAM_INVALID:
            await health.failure(route.id)
        if await self._fall_back(task, worker_id, route, state, exc):
            return
        await self._fail(task, worker_id, exc)

    async def _unavailable(
        self,
        task: Task,
        worker_id: str,
        route: ModelRoute,
        engine: RemoteEngine,
        state: dict[str, Any],
    ) -> None:
        """The route's breaker is open before the job exists: a fallback, or wait for the
        trial."""
        exc = UpstreamError(
            f"{route.id} is failing upstream (circuit open)",
            code=UPSTREAM_UNAVAILABLE,
            retriable=True,
        )
        if await self._fall_back(task, worker_id, route, state, exc):
            return
        delay = max(engine.poll_interval, float(self._catalog.health.retry_after(route.id) or 0))
        await self._park(task, worker_id, state, task.engine_task_id, delay, task.progress)

    async def _fall_back(
        self,
        task: Task,
        worker_id: str,
        route: ModelRoute,
        state: dict[str, Any],
        exc: UpstreamError,
    ) -> bool:
        """Move the task to the next available, healthy fallback that can serve it at no
        more than the held credits; False when there is none."""
        original = self._catalog.get(task.model)
        if original is None:
            return False
        tried = [*state.get("tried", []), route.id]
        for candidate_id in original.fallbacks:
            candidate = self._catalog.get(candidate_id)
            if candidate is None or candidate.id in tried or candidate.id == original.id:
                continue
            if not self._catalog.is_available(candidate):
                continue
            if not self._catalog.health.would_allow(candidate.id):
                continue
            try:
                plan = self._catalog.plan_video(candidate, _ParamsShape(task.params))
            except FramegateError:
                continue  # it cannot make this request (size, duration, image...)
            price = min(plan.credits, task.credits_reserved)
            upstream = {
                "route": candidate.id,
                "tried": tried,
                "price": price,
                "reason": f"{route.id}: {exc.code}: {exc.message}"[:500],
            }
            if await self._lifecycle.reroute(task, worker_id, upstream):
                log.warning(
                    "task %s: %s failed (%s); falling back to %s",
                    task.id,
                    route.id,
                    exc.code,
                    candidate.id,
                )
            return True
        return False

    async def _cancel_orphan(
        self, engine: RemoteEngine, job: UpstreamJob, request: GenerationRequest
    ) -> None:
        try:
            await engine.cancel(job, request)
        except Exception:
            log.warning("cancelling orphaned upstream job %s failed", job.id, exc_info=True)

    async def _fail(self, task: Task, worker_id: str, exc: UpstreamError) -> None:
        code = exc.code if exc.code else UPSTREAM_ERROR
        message = exc.message.rstrip(".")
        await self._lifecycle.fail(
            task, code, f"{message}; the credits were refunded.", worker_id=worker_id
        )

    async def _park(
        self,
        task: Task,
        worker_id: str,
        state: dict[str, Any],
        engine_task_id: str | None,
        delay: float,
        progress: int,
    ) -> bool:
        until = utcnow() + timedelta(seconds=max(0.0, delay))
        return await self._lifecycle.park(
            task,
            worker_id,
            until=until,
            progress=progress,
            upstream=state,
            engine_task_id=engine_task_id,
        )

    # -- the result ------------------------------------------------------------------------

    async def _download(self, engine: RemoteEngine, url: str, workdir: Path) -> OutputFile:
        raw = workdir / "upstream-video"
        await engine.download(url, raw, self._options.download_policy)
        try:
            return await asyncio.to_thread(_prepare_video, raw, workdir, self._options.max_pixels)
        except UpstreamError as exc:
            raise UpstreamError(f"{engine.name}: {exc.message}") from exc
        except (av.FFmpegError, ValueError, IndexError, StopIteration) as exc:
            raise UpstreamError(
                f"{engine.name}: the result is not a playable video ({type(exc).__name__})"
            ) from exc


def inspect_video(path: Path, max_pixels: int = 40_000_000) -> VideoInfo:
    """What the video at ``path`` is, read from its headers and packets: no frame is
    decoded, and frames larger than ``max_pixels`` are refused before any is."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > max_pixels:
            raise UpstreamError(
                f"the result's frames are {width}x{height} pixels, more than the "
                f"{max_pixels / 1_000_000:g} megapixels this installation decodes"
            )
        rate = stream.average_rate or stream.guessed_rate or Fraction(24)
        frames = stream.frames
        if not frames:
            # One packet per frame: counting them costs no decoding.
            frames = sum(1 for packet in container.demux(stream) if packet.size)
        fps = max(1, round(float(rate)))
        return VideoInfo(
            width=width,
            height=height,
            fps=fps,
            num_frames=frames,
            duration=frames / float(rate),
            is_h264_mp4=stream.codec_context.name == "h264" and "mp4" in container.format.name,
        )


def _prepare_video(raw: Path, workdir: Path, max_pixels: int) -> OutputFile:
    """The vendor's file as framegate serves videos: H.264 MP4 (re-encoded only when it is
    something else), plus a JPEG thumbnail of the first frame.

    Frames past ``max_pixels`` are refused before any is decoded; a re-encode holds one
    decoded frame at a time (handed to the encoder as decoded, without an RGB copy)."""
    info = inspect_video(raw, max_pixels)
    video = workdir / "video.mp4"
    if info.is_h264_mp4:
        raw.rename(video)
    else:
        with av.open(str(raw)) as container:
            encode_mp4(
                container.decode(video=0),
                video,
                width=info.width - info.width % 2,
                height=info.height - info.height % 2,
                fps=info.fps,
            )
        raw.unlink(missing_ok=True)
        info = inspect_video(video, max_pixels)
    thumbnail = workdir / "thumbnail.jpg"
    width, height = _thumbnail_size(info.width, info.height)
    # One full-size frame, decoded under the process's image decoding limit and scaled
    # to the thumbnail by the scaler, not copied to RGB at full size first.
    with image_decoding.slot(), av.open(str(video)) as container:
        frame = next(container.decode(video=0))
        first = frame.reformat(width, height, "rgb24", interpolation=Interpolation.AREA)
    save_jpeg(first.to_ndarray(), thumbnail)
    return OutputFile(
        path=video,
        content_type="video/mp4",
        width=info.width,
        height=info.height,
        thumbnail_path=thumbnail,
        duration=round(info.duration, 3),
        fps=info.fps,
        num_frames=info.num_frames,
    )


def _thumbnail_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, _THUMBNAIL_SIDE / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


def signed_input_url(options: UpstreamOptions, key: str | None) -> str | None:
    """A URL of a stored input image that a vendor can fetch (the bucket's presigned URL,
    or the API's signed link under FRAMEGATE_PUBLIC_URL); None when there is none."""
    if not key or options.links is None:
        return None
    return options.links.public_url(key, options.public_url)


async def cancel_upstream(catalog: Catalog, engines: EngineRegistry, task: Task) -> None:
    """Best effort: stop a cancelled task's job at its vendor (the vendor may bill it
    otherwise). Failures are logged, never raised."""
    if not task.engine_task_id:
        return
    route = catalog.get((task.upstream or {}).get("route") or task.model)
    engine = engines.remote(route.engine) if route else None
    if route is None or engine is None:
        return
    params = task.params
    request = GenerationRequest(
        task_id=task.id,
        kind="video",
        prompt=params.get("prompt", ""),
        width=params.get("width", 0),
        height=params.get("height", 0),
        seed=params.get("seed", 0),
        settings=route.settings,
    )
    job = UpstreamJob(task.engine_task_id, dict((task.upstream or {}).get("job") or {}))
    try:
        await engine.cancel(job, request)
    except Exception:
        log.warning("task %s: cancelling upstream job %s failed", task.id, job.id, exc_info=True)
