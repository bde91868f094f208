"""The one task service every route family (native and compat) submits through.

Methods that write take the request's session and never commit: the request's unit of work
(``dependencies.get_session``) commits, and what may only follow a commit (waking the
workers, evicting a cached task) is registered as an after-commit hook here. Reads of single
tasks go through the task cache and its own read sessions (the polled path)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from cachetools import TLRUCache
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from framegate.catalog.service import Catalog, OutputPlan
from framegate.credits.service import credit_service
from framegate.db import after_commit
from framegate.exceptions import Conflict, FramegateError, InvalidValue, NotFound
from framegate.keys.service import AuthContext
from framegate.kit.ids import new_id
from framegate.kit.images import image_decoding, intake_image, read_image_source
from framegate.kit.pagination import one_page
from framegate.kit.safe_fetch import FetchPolicy, validate_url
from framegate.kit.time import as_utc, utcnow
from framegate.kit.views import from_row
from framegate.limits.service import LimitsService, PlanLimits
from framegate.models import Task, TaskStatus, TaskType
from framegate.models.task import TERMINAL_STATUSES
from framegate.storage.base import Storage, StoredObject, input_key, output_key
from framegate.storage.links import FileLinks
from framegate.tasks.lifecycle import TaskLifecycle
from framegate.tasks.repository import TaskFilter, task_repository
from framegate.tasks.schemas import (
    MAX_SEED,
    ImageGenerationRequest,
    TaskError,
    TaskObject,
    TaskOutput,
    TaskResult,
    VideoGenerationRequest,
)
from framegate.tasks.signals import TaskSignals
from framegate.uploads.service import UploadService

# Storage names of a task's input images, by request field.
INPUT_IMAGE_NAMES = {"input_image": "input", "last_image": "last"}
UPLOAD_ID_PREFIX = "upl_"
_FINISHED_TASK_CACHE_SECONDS = 300.0
# A rendered task with signed URLs is reused this long; its URLs stay valid for the
# signing TTL minus this.
_SIGNED_RENDER_SECONDS = 60.0


class GenerationFailed(FramegateError):
    """A synchronous-style request (image generation) whose task failed; already refunded."""

    status_code = 502
    type = "api_error"
    code = "generation_failed"


class TaskNotCancellable(Conflict):
    """Only queued and processing tasks can be cancelled."""

    code = "task_not_cancellable"


@dataclass(slots=True)
class _CachedTask:
    task: Task
    json: bytes | None = None
    json_base: str = ""
    json_until: float = 0.0


@dataclass(frozen=True, slots=True)
class PreparedInput:
    data: bytes
    description: str


@dataclass(frozen=True, slots=True)
class CheckedVideo:
    """A video request that passed every check costing no more than a query (check_video)."""

    body: VideoGenerationRequest
    plan: OutputPlan
    limits: PlanLimits
    # Image bytes by upload id, for an upload stored by this same request (a form's file),
    # whose row the read session cannot see before the commit.
    uploaded: dict[str, bytes] = dataclasses.field(default_factory=dict)


class TaskService:
    def __init__(
        self,
        *,
        uploads: UploadService,
        limits: LimitsService,
        catalog: Catalog,
        storage: Storage,
        links: FileLinks,
        fetch_policy: FetchPolicy,
        max_image_pixels: int,
        default_deadline_seconds: float,
        read_sessionmaker: async_sessionmaker[AsyncSession],
        signals: TaskSignals,
        lifecycle: TaskLifecycle,
        cancel_upstream: Callable[[Task], Coroutine[Any, Any, None]],
        cache_seconds: float,
        signed_url_ttl_seconds: int,
        decode_concurrency: int | None = None,
    ) -> None:
        if decode_concurrency is not None:
            # The limit is the process's (workers and uploads decode under it too); the
            # service that takes input images is where the settings reach it.
            image_decoding.configure(decode_concurrency)
        self._signals = signals
        self._lifecycle = lifecycle
        self._cancel_upstream = cancel_upstream
        # Upstream cancels run in the background; kept here so they are not collected.
        self._background: set[asyncio.Task[None]] = set()
        self._uploads = uploads
        self._limits = limits
        self._default_deadline_seconds = default_deadline_seconds
        self.catalog = catalog
        self._storage = storage
        self._links = links
        self._fetch_policy = fetch_policy
        self._max_image_pixels = max_image_pixels
        self._read_sessionmaker = read_sessionmaker
        # Polled tasks, so a poll costs no database round trip. Every change made in this
        # process evicts its entry (see forget); changes made by other processes show
        # within cache_seconds. Finished tasks no longer change and stay longer.
        self._cache_seconds = cache_seconds
        self._loading: dict[str, asyncio.Future[_CachedTask | None]] = {}
        # Rendered tasks with signed URLs are reused for at most this long, so every URL
        # handed out stays valid for at least half the signing TTL.
        self._signed_render_seconds = min(_SIGNED_RENDER_SECONDS, signed_url_ttl_seconds / 2)
        self._cache: TLRUCache[str, _CachedTask] | None = (
            TLRUCache(maxsize=20_000, ttu=self._time_to_use) if cache_seconds > 0 else None
        )

    def _time_to_use(self, _key: str, entry: _CachedTask, now: float) -> float:
        finished = TaskStatus(entry.task.status).is_terminal()
        return now + (_FINISHED_TASK_CACHE_SECONDS if finished else self._cache_seconds)

    def forget(self, task_id: str) -> None:
        # A load already in flight may have read the old state: later readers start anew.
        self._loading.pop(task_id, None)
        if self._cache is not None:
            self._cache.pop(task_id, None)

    async def _load_once(self, task_id: str) -> _CachedTask | None:
        """Concurrent readers of one uncached task (many event streams woken by the same
        change) share one database read, and then its rendered JSON."""
        pending = self._loading.get(task_id)
        if pending is None:
            pending = asyncio.ensure_future(self._load(task_id))
            self._loading[task_id] = pending
        entry = await asyncio.shield(pending)
        if self._loading.get(task_id) is pending:
            # Still the current load (no change was signalled while it read): keep it.
            del self._loading[task_id]
            if entry is not None and self._cache is not None:
                self._cache[task_id] = entry
        return entry

    async def _load(self, task_id: str) -> _CachedTask | None:
        async with self._read_sessionmaker() as session:
            task = await task_repository.get(session, task_id)
        return None if task is None else _CachedTask(task)

    def plan_video(self, body: VideoGenerationRequest) -> OutputPlan:
        route = self.catalog.require(body.model, kind="video")
        return self.catalog.plan_video(route, body)

    async def prepare_input_image(
        self,
        session: AsyncSession,
        account_id: str,
        value: str | None,
        *,
        param: str = "input_image",
        cover: tuple[int, int],
        uploaded: Mapping[str, bytes] | None = None,
    ) -> PreparedInput | None:
        """Fetch (or read the upload) and decode the input image before credits are held;
        what is kept is the image reduced to cover the output's ``cover`` size."""
        if value is None:
            return None
        uploaded = uploaded or {}
        if value in uploaded:
            data, description = uploaded[value], value
        elif value.startswith(UPLOAD_ID_PREFIX):
            # A read session: the request's transaction takes the write lock only when it
            # writes the task, not while the image is read and decoded.
            async with self._read_sessionmaker() as read:
                data = await self._uploads.image_bytes(read, account_id, value, param=param)
            description = value
        else:
            data = await read_image_source(value, policy=self._fetch_policy, param=param)
            is_data_uri = value.startswith("data:")
            description = f"data URI ({len(data)} bytes)" if is_data_uri else value
        kept = await image_decoding.run(
            intake_image, data, param=param, max_pixels=self._max_image_pixels, cover=cover
        )
        return PreparedInput(data=kept, description=description)

    async def check_video(self, auth: AuthContext, body: VideoGenerationRequest) -> CheckedVideo:
        """Refuse now what can be refused without reading an input image: the plan, the
        route's health, metadata, webhook URL and, when there are images to read,
        concurrency, key spend and credits. Form routes run it before decoding the image
        their form carries (the upload id it will have stands in as input_image)."""
        plan = self.plan_video(body)
        self.catalog.check_healthy(plan.route)
        _check_metadata(body.metadata)
        await self._check_webhook_url(body.webhook_url)
        limits = await self._limits.plan_for(auth.account.plan)
        if any(getattr(body, field) is not None for field in INPUT_IMAGE_NAMES):
            # Every check that costs no more than a query comes before the images are
            # fetched and decoded, the expensive part of a submission.
            await self._precheck(auth, TaskType.video_generation, plan.credits, limits)
        return CheckedVideo(body, plan, limits)

    async def submit_video(
        self,
        session: AsyncSession,
        auth: AuthContext,
        body: VideoGenerationRequest | CheckedVideo,
    ) -> Task:
        """Queue a video task; a request already through check_video is not checked again
        (the submitting transaction still checks limits and credits)."""
        checked = body if isinstance(body, CheckedVideo) else await self.check_video(auth, body)
        body, plan, limits = checked.body, checked.plan, checked.limits
        images = {field: getattr(body, field) for field in INPUT_IMAGE_NAMES}
        prepared = {}
        for field, value in images.items():
            image = await self.prepare_input_image(
                session,
                auth.account.id,
                value,
                param=field,
                cover=(plan.width, plan.height),
                uploaded=checked.uploaded,
            )
            if image is not None:
                prepared[field] = image
        params: dict[str, Any] = {
            "prompt": body.prompt,
            "negative_prompt": body.negative_prompt,
            "duration": plan.duration,
            "fps": plan.fps,
            "num_frames": plan.num_frames,
            "size": f"{plan.width}x{plan.height}",
            "width": plan.width,
            "height": plan.height,
            "seed": _seed(body.seed),
            "camera_fixed": body.camera_fixed,
        }
        return await self._create(
            session,
            auth,
            plan=plan,
            limits=limits,
            task_type=TaskType.video_generation,
            params=params,
            prepared=prepared,
            webhook_url=body.webhook_url,
            metadata=body.metadata,
        )

    async def submit_image(
        self, session: AsyncSession, auth: AuthContext, body: ImageGenerationRequest
    ) -> Task:
        route = self.catalog.require(body.model, kind="image")
        plan = self.catalog.plan_image(route, size=body.size, n=body.n)
        _check_metadata(body.metadata)
        await self._check_webhook_url(body.webhook_url)
        limits = await self._limits.plan_for(auth.account.plan)
        params: dict[str, Any] = {
            "prompt": body.prompt,
            "negative_prompt": body.negative_prompt,
            "n": plan.n,
            "size": f"{plan.width}x{plan.height}",
            "width": plan.width,
            "height": plan.height,
            "seed": _seed(body.seed),
        }
        return await self._create(
            session,
            auth,
            plan=plan,
            limits=limits,
            task_type=TaskType.image_generation,
            params=params,
            prepared={},
            webhook_url=body.webhook_url,
            metadata=body.metadata,
        )

    async def _check_webhook_url(self, url: str | None) -> None:
        if url is not None:
            await validate_url(
                url,
                self._fetch_policy,
                param="webhook_url",
                remedy="Use a publicly reachable https endpoint of your backend.",
            )

    async def _precheck(
        self, auth: AuthContext, task_type: TaskType, price: int, limits: PlanLimits
    ) -> None:
        """Refuse now what the submitting transaction would refuse (concurrency, key spend,
        credits), with the same errors, before any expensive work. Only a pre-check: the
        transaction checks again under the account's lock and decides."""
        async with self._read_sessionmaker() as session:
            await self._limits.precheck_submission(session, auth, task_type, price, limits)
            await credit_service.check_covered(session, auth.account.id, price)

    async def _create(
        self,
        session: AsyncSession,
        auth: AuthContext,
        *,
        plan: OutputPlan,
        limits: PlanLimits,
        task_type: TaskType,
        params: dict[str, Any],
        prepared: dict[str, PreparedInput],
        webhook_url: str | None,
        metadata: dict[str, str],
    ) -> Task:
        task = Task(
            id=new_id("task"),
            number=secrets.randbelow(2**53 - 1) + 1,
            account_id=auth.account.id,
            api_key_id=auth.key.id,
            type=task_type,
            model=plan.route.id,
            status=TaskStatus.queued,
            progress=0,
            params=params,
            task_metadata=metadata,
            webhook_url=webhook_url,
            estimated_seconds=plan.estimated_seconds,
            attempts=0,
            deadline_at=utcnow()
            + timedelta(seconds=plan.route.deadline_seconds or self._default_deadline_seconds),
        )
        for field, image in prepared.items():
            key = input_key(task.id, INPUT_IMAGE_NAMES[field])
            await self._storage.put_bytes(key, image.data, "application/octet-stream")
            params[field] = image.description
            params[f"{field}_key"] = key
        try:
            await self._limits.check_submission(session, auth, task_type, plan.credits, limits)
            await task_repository.add(session, task)
            await credit_service.hold(session, task, plan.credits)
        except BaseException:
            if prepared:
                await self._storage.delete_prefix(input_key(task.id, ""))
            raise
        # Committed with the task (a worker that woke before the commit would not find it).
        await self._lifecycle.enqueue(session, task)
        return task

    async def cancel(self, account_id: str, task_id: str) -> Task:
        """Cancel this account's queued or processing task (its hold released, in the
        lifecycle's own transaction) and stop its vendor job in the background. Raises
        NotFound, or TaskNotCancellable for a finished task."""
        cancelled = await self._lifecycle.cancel(account_id, task_id)
        if cancelled is None:
            raise NotFound(f"No task {task_id!r}.", param="task_id", code="task_not_found")
        if cancelled.status != TaskStatus.cancelled:
            raise TaskNotCancellable(
                f"Task {task_id} is already {cancelled.status}; only queued or processing "
                "tasks can be cancelled."
            )
        if cancelled.engine_task_id:
            job = asyncio.create_task(self._cancel_upstream(cancelled))
            self._background.add(job)
            job.add_done_callback(self._background.discard)
        return cancelled

    async def purge_outputs(self, session: AsyncSession, task: Task) -> bool:
        """Delete a finished task's stored files (outputs and inputs) and mark it purged:
        what the retention sweeper does at the end of retention and a dialect's delete does
        at once. Files first: a crash in between leaves files to delete again, never a
        purged task whose files remain. Whether the task was marked (it is finished)."""
        now = utcnow()
        await self._storage.delete_prefix(output_key(task.id, ""))
        await self._storage.delete_prefix(input_key(task.id, ""))
        expires_at = task.expires_at
        if expires_at is None or as_utc(expires_at) > now:
            expires_at = now
        marked = await task_repository.compare_and_set(
            session,
            task.id,
            status=tuple(TERMINAL_STATUSES),
            values={"purged_at": now, "expires_at": expires_at, "updated_at": now},
        )
        after_commit(session, lambda: self._signals.task_changed(task.id))
        return marked

    async def stored_file(self, key: str) -> Path | StoredObject:
        """A task's stored file: its local path where storage keeps one, else the object to
        stream. FileNotFoundError once it is deleted."""
        path = self._storage.local_path(key)
        if path is None:
            return await self._storage.open(key)
        if not path.is_file():
            raise FileNotFoundError(key)
        return path

    @contextlib.asynccontextmanager
    async def local_copy(self, key: str) -> AsyncIterator[Path]:
        """A task's stored file as a local path for the block (a temporary copy where the
        storage keeps none). FileNotFoundError once it is deleted."""
        path = self._storage.local_path(key)
        if path is not None:
            if not path.is_file():
                raise FileNotFoundError(key)
            yield path
            return
        with tempfile.TemporaryDirectory(prefix="framegate-") as scratch:
            path = Path(scratch) / key.rsplit("/", 1)[-1]
            await self._storage.download(key, path)
            yield path

    async def stored_input(self, key: str) -> bytes | None:
        """A task's stored input image (None once it is deleted)."""
        if not await self._storage.exists(key):
            return None
        return await self._storage.get_bytes(key)

    async def get(self, account_id: str, task_id: str) -> Task:
        return (await self._entry(account_id, task_id)).task

    async def get_by_number(self, account_id: str, number: int) -> Task:
        """A task by its integer alias (dialects with numeric ids)."""
        async with self._read_sessionmaker() as session:
            task = await task_repository.get_by_number(session, number)
        if task is None or task.account_id != account_id:
            raise NotFound(f"No task {number}.", param="task_id", code="task_not_found")
        return await self.get(account_id, task.id)

    async def render(self, account_id: str, task_id: str, absolute: Callable[[str], str]) -> bytes:
        """The task's JSON as GET /v1/tasks/{id} answers it, rendered at most once per change
        (and per minute once it has signed output URLs, which stay valid long after)."""
        entry = await self._entry(account_id, task_id)
        base = absolute("")
        now = time.monotonic()
        if entry.json is None or entry.json_base != base or now >= entry.json_until:
            entry.json = self.to_object(entry.task, absolute).model_dump_json().encode()
            entry.json_base = base
            entry.json_until = now + (
                self._signed_render_seconds if entry.task.result else math.inf
            )
        return entry.json

    async def outputs_expired(self, key: str) -> bool:
        """Whether ``key`` was an output of a task whose outputs retention deleted."""
        parts = key.split("/")
        if len(parts) < 3 or parts[0] != "outputs":
            return False
        async with self._read_sessionmaker() as session:
            task = await task_repository.get(session, parts[1])
        return task is not None and task.purged_at is not None

    async def wait_until_finished(self, task: Task, timeout: float) -> Task:
        """The task once it is finished, or as it is after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            async with self._read_sessionmaker() as session:
                current = await task_repository.get(session, task.id)
            task = current or task
            remaining = deadline - loop.time()
            if TaskStatus(task.status).is_terminal() or remaining <= 0:
                return task
            # Woken at once by a change in this process; re-read regularly for the others.
            recheck = self._signals.recheck_after(0.5)
            await self._signals.wait_for_change(task.id, min(recheck, remaining))

    async def _entry(self, account_id: str, task_id: str) -> _CachedTask:
        entry = self._cache.get(task_id) if self._cache is not None else None
        if entry is None:
            entry = await self._load_once(task_id)
        if entry is None or entry.task.account_id != account_id:
            # Another tenant's task is indistinguishable from a missing one.
            raise NotFound(f"No task {task_id!r}.", param="task_id", code="task_not_found")
        return entry

    async def list_tasks(
        self,
        session: AsyncSession,
        account_id: str,
        *,
        limit: int,
        after: str | None,
        filters: TaskFilter,
    ) -> tuple[list[Task], bool]:
        rows = await task_repository.list_for_account(
            session, account_id, limit=limit + 1, after=after, filters=filters
        )
        return one_page(rows, limit)

    async def list_videos(
        self,
        session: AsyncSession,
        account_id: str,
        *,
        limit: int,
        after: str | None,
        order: Literal["asc", "desc"],
    ) -> tuple[list[Task], bool]:
        """The account's video tasks whose files are not purged, in either id order."""
        rows = await task_repository.list_unpurged_videos(
            session, account_id, limit=limit + 1, after=after, order=order
        )
        return one_page(rows, limit)

    def to_object(self, task: Task, absolute: Callable[[str], str]) -> TaskObject:
        """The API view of a task; output URLs are signed now, for this response."""
        result = None
        if task.result and task.purged_at is None:
            result = TaskResult(
                data=[self._output(item, absolute) for item in task.result.get("outputs", [])]
            )
        error = None
        if task.error_code:
            error = TaskError(code=task.error_code, message=task.error_message or "")
        public_input = {k: v for k, v in task.params.items() if not k.endswith("_key")}
        return from_row(
            TaskObject,
            task,
            served_by=task.served_by or (task.upstream or {}).get("route"),
            input=public_input,
            metadata=task.task_metadata or {},
            result=result,
            error=error,
        )

    def _output(self, item: dict[str, Any], absolute: Callable[[str], str]) -> TaskOutput:
        thumbnail = item.get("thumbnail_key")
        return TaskOutput(
            url=self._links.url(item["key"], absolute),
            content_type=item["content_type"],
            width=item["width"],
            height=item["height"],
            thumbnail_url=self._links.url(thumbnail, absolute) if thumbnail else None,
            duration=item.get("duration"),
            fps=item.get("fps"),
            num_frames=item.get("num_frames"),
        )


def _seed(value: int | None) -> int:
    return secrets.randbelow(MAX_SEED + 1) if value is None else value


def _check_metadata(metadata: dict[str, str]) -> None:
    for key, value in metadata.items():
        if not key or len(key) > 64 or len(value) > 512:
            raise InvalidValue(
                "metadata keys must be 1-64 characters and values at most 512 characters.",
                param=f"metadata.{key}" if key else "metadata",
            )
