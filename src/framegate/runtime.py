"""Runtime: the long-lived objects one framegate process builds from its Settings.

The API (through the app's lifespan), the CLI and the tests build it the same way, so
there is one place where engines, database, storage, catalog and services are wired.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from framegate.accounts.service import AccountService
from framegate.catalog.health import RouteHealth, SharedRouteHealth
from framegate.catalog.service import Catalog, load_routes
from framegate.config import Settings
from framegate.console.sessions import ConsoleSessions
from framegate.db import (
    create_engine,
    create_read_sessionmaker,
    create_sessionmaker,
    upgrade_database_async,
)
from framegate.dispatch.distributed import ClusterWorker, WorkerDirectory, select_routes
from framegate.dispatch.embedded import EmbeddedDispatcher
from framegate.dispatch.jobs import EmbeddedQueue, ProcrastinateQueue
from framegate.dispatch.upstream import cancel_upstream
from framegate.dispatch.worker import TaskRunner, UpstreamOptions
from framegate.engines.registry import EngineRegistry, default_engines
from framegate.keys.service import APIKeyService
from framegate.kit.addresses import parse_networks
from framegate.kit.cluster import ClusterBus
from framegate.limits.clients import ClientLimiter
from framegate.limits.service import LimitsService, PlanLimits
from framegate.storage.base import Storage
from framegate.storage.links import FileLinks
from framegate.storage.local import LocalStorage
from framegate.storage.s3 import S3Storage
from framegate.storage.signing import URLSigner
from framegate.tasks.jobs import RetentionSweeper
from framegate.tasks.lifecycle import TaskLifecycle
from framegate.tasks.service import TaskService
from framegate.tasks.signals import TaskSignals
from framegate.uploads.service import UploadService
from framegate.webhooks.jobs import WebhookDeliveryJob
from framegate.webhooks.service import WebhookService


@dataclass
class Runtime:
    settings: Settings
    db_engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    read_sessionmaker: async_sessionmaker[AsyncSession]
    engines: EngineRegistry
    catalog: Catalog
    storage: Storage
    signer: URLSigner
    links: FileLinks
    console: ConsoleSessions
    keys: APIKeyService
    accounts: AccountService
    tasks: TaskService
    signals: TaskSignals
    lifecycle: TaskLifecycle
    webhooks: WebhookService
    uploads: UploadService
    limits: LimitsService
    clients: ClientLimiter
    dispatcher: EmbeddedDispatcher | None = field(default=None)
    webhook_job: WebhookDeliveryJob | None = field(default=None)
    sweeper: RetentionSweeper | None = field(default=None)
    bus: ClusterBus = field(default_factory=lambda: ClusterBus(None))
    directory: WorkerDirectory | None = field(default=None)
    cluster_task: asyncio.Task[None] | None = field(default=None)

    @classmethod
    async def create(
        cls, settings: Settings, *, engines: EngineRegistry | None = None, migrate: bool = True
    ) -> Runtime:
        settings.check()
        settings.ensure_data_dir()
        if migrate:
            await upgrade_database_async(settings.resolved_database_url)
        db_engine = create_engine(settings.resolved_database_url)
        sessionmaker = create_sessionmaker(db_engine)
        read_sessionmaker = create_read_sessionmaker(db_engine)
        engines = engines or default_engines(settings)
        # Messages between the processes of a distributed installation (task changes, cache
        # evictions, breakers); within this process only otherwise.
        bus = ClusterBus(settings.resolved_database_url if settings.is_distributed else None)
        failures, cooldown = settings.breaker_failures, settings.breaker_cooldown_seconds
        health = (
            SharedRouteHealth(
                sessionmaker, bus, failures_to_open=failures, cooldown_seconds=cooldown
            )
            if bus.distributed
            else RouteHealth(failures_to_open=failures, cooldown_seconds=cooldown)
        )
        catalog = Catalog(load_routes(settings.catalog_file), engines, health)
        await engines.prepare()
        storage = make_storage(settings)
        secret = settings.effective_secret_key
        signer = URLSigner(
            secret,
            settings.signed_url_ttl_seconds,
            previous_secrets=settings.previous_secret_keys,
        )
        links = FileLinks(storage, signer)
        keys = APIKeyService(
            secret,
            bus=bus,
            sessionmaker=sessionmaker,
            read_sessionmaker=read_sessionmaker,
            cache_seconds=settings.read_cache_seconds,
            previous_secrets=settings.previous_secret_keys,
            unknown_key_seconds=settings.unknown_key_cache_seconds,
        )
        clients = ClientLimiter(
            storage_url=settings.rate_limit_storage_url,
            anonymous_per_minute=settings.anonymous_requests_per_minute,
            failed_auth_per_minute=settings.failed_auth_per_minute,
            trusted_proxies=parse_networks(settings.trusted_proxies),
        )
        signals = TaskSignals()
        lifecycle = TaskLifecycle(
            sessionmaker,
            signals,
            read_sessionmaker=read_sessionmaker,
            lease_seconds=settings.task_lease_seconds,
            max_attempts=settings.task_max_attempts,
            retention_days=settings.retention_days,
            queue=ProcrastinateQueue() if settings.is_distributed else EmbeddedQueue(signals),
            bus=bus,
        )
        if bus.distributed:
            # A task changed in another process: wake this one's watchers, drop its cache.
            bus.subscribe("task", signals.task_changed)
            bus.on_resync(signals.wake_all)
            signals.announced_across_processes = True
            if isinstance(health, SharedRouteHealth):
                await health.start()
            await bus.start()
        limits = LimitsService(
            storage_url=settings.rate_limit_storage_url,
            defaults=PlanLimits(
                name="default",
                max_concurrent_videos=settings.default_max_concurrent_videos,
                max_concurrent_images=settings.default_max_concurrent_images,
                requests_per_minute=settings.default_requests_per_minute,
            ),
            plan_cache_seconds=settings.read_cache_seconds,
            read_sessionmaker=read_sessionmaker,
            bus=bus,
        )
        uploads = UploadService(
            storage=storage,
            image_max_bytes=settings.upload_image_max_bytes,
            video_max_bytes=settings.upload_video_max_bytes,
            max_image_pixels=settings.input_image_max_pixels,
            retention_days=settings.retention_days,
            scratch_dir=settings.data_dir / "tmp" / "uploads",
        )
        tasks = TaskService(
            uploads=uploads,
            limits=limits,
            catalog=catalog,
            storage=storage,
            links=links,
            fetch_policy=settings.fetch_policy,
            max_image_pixels=settings.input_image_max_pixels,
            default_deadline_seconds=settings.task_deadline_seconds,
            read_sessionmaker=read_sessionmaker,
            signals=signals,
            lifecycle=lifecycle,
            cancel_upstream=functools.partial(cancel_upstream, catalog, engines),
            cache_seconds=settings.read_cache_seconds,
            signed_url_ttl_seconds=settings.signed_url_ttl_seconds,
            decode_concurrency=settings.image_decode_concurrency,
        )
        signals.on_change(tasks.forget)
        webhooks = WebhookService(
            sessionmaker=sessionmaker,
            read_sessionmaker=read_sessionmaker,
            fetch_policy=settings.fetch_policy,
            progress_interval_seconds=settings.webhook_progress_interval_seconds,
            timeout_seconds=settings.webhook_timeout_seconds,
            max_endpoints=settings.webhook_max_endpoints,
        )
        lifecycle.add_sink(webhooks)
        return cls(
            settings=settings,
            db_engine=db_engine,
            sessionmaker=sessionmaker,
            read_sessionmaker=read_sessionmaker,
            engines=engines,
            catalog=catalog,
            storage=storage,
            signer=signer,
            links=links,
            console=ConsoleSessions(
                keys,
                sessionmaker=sessionmaker,
                read_sessionmaker=read_sessionmaker,
                lifetime_seconds=settings.console_session_seconds,
            ),
            keys=keys,
            accounts=AccountService(keys),
            tasks=tasks,
            signals=signals,
            lifecycle=lifecycle,
            webhooks=webhooks,
            uploads=uploads,
            limits=limits,
            clients=clients,
            bus=bus,
        )

    def task_runner(self) -> TaskRunner:
        """The job path every worker of this process runs a claimed task through."""
        settings = self.settings
        return TaskRunner(
            catalog=self.catalog,
            engines=self.engines,
            storage=self.storage,
            lifecycle=self.lifecycle,
            scratch_dir=settings.data_dir / "tmp",
            max_image_pixels=settings.input_image_max_pixels,
            upstream=UpstreamOptions(
                poll_seconds=settings.vendor_poll_seconds,
                max_poll_seconds=settings.vendor_poll_max_seconds,
                max_pixels=settings.input_image_max_pixels,
                download_policy=dataclasses.replace(
                    settings.fetch_policy,
                    max_bytes=settings.vendor_result_max_bytes,
                    read_timeout=60.0,
                    total_timeout=600.0,
                ),
                public_url=settings.public_url,
                links=self.links,
            ),
        )

    async def start_workers(self, *, with_worker: bool = False) -> None:
        """The serving process's background jobs. Embedded: the generation workers (none
        when FRAMEGATE_WORKER_CONCURRENCY is 0), the lease and deadline reaper, webhook
        deliveries and retention sweeps. Distributed: the live workers' routes (catalog
        availability) and, ``with_worker``, a worker for the routes this machine can serve."""
        if self.dispatcher is not None or self.directory is not None:
            return
        settings = self.settings
        if settings.is_distributed:
            self.directory = WorkerDirectory(self)
            await self.directory.start()
            self.catalog.serve_from(self.directory.served)
            if with_worker:
                cluster = ClusterWorker(
                    self, select_routes(self, None), settings.worker_concurrency
                )
                self.cluster_task = asyncio.create_task(
                    cluster.run(install_signal_handlers=False), name="cluster-worker"
                )
            return
        self.dispatcher = EmbeddedDispatcher(
            runner=self.task_runner(),
            lifecycle=self.lifecycle,
            signals=self.signals,
            concurrency=settings.worker_concurrency,
            poll_seconds=settings.worker_poll_seconds,
            reaper_interval_seconds=settings.reaper_interval_seconds,
        )
        await self.dispatcher.start()
        await self.start_maintenance()

    async def start_maintenance(self) -> None:
        """Webhook deliveries and the retention sweeper, in this process."""
        self.webhook_job = self.webhook_delivery_job()
        await self.webhook_job.start()
        self.sweeper = self.retention_sweeper()
        await self.sweeper.start()

    def webhook_delivery_job(self) -> WebhookDeliveryJob:
        """Deliveries are claimed row by row: any number of processes may run one."""
        settings = self.settings
        return WebhookDeliveryJob(
            sessionmaker=self.sessionmaker,
            read_sessionmaker=self.read_sessionmaker,
            fetch_policy=settings.fetch_policy,
            retry_schedule=settings.webhook_retry_schedule,
            timeout_seconds=settings.webhook_timeout_seconds,
            poll_seconds=settings.webhook_poll_seconds,
        )

    def retention_sweeper(self) -> RetentionSweeper:
        return RetentionSweeper(
            sessionmaker=self.sessionmaker,
            read_sessionmaker=self.read_sessionmaker,
            storage=self.storage,
            tasks=self.tasks,
            interval_seconds=self.settings.retention_sweep_seconds,
        )

    async def close(self) -> None:
        if self.cluster_task is not None:
            self.cluster_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.cluster_task
            self.cluster_task = None
        if self.directory is not None:
            await self.directory.stop()
            self.directory = None
        if self.sweeper is not None:
            await self.sweeper.stop()
            self.sweeper = None
        if self.webhook_job is not None:
            await self.webhook_job.stop()
            self.webhook_job = None
        if self.dispatcher is not None:
            await self.dispatcher.stop()
            self.dispatcher = None
        await self.bus.stop()
        await asyncio.to_thread(self.engines.close)
        await self.db_engine.dispose()


def make_storage(settings: Settings) -> Storage:
    """The storage the settings name: the data directory, or an S3-compatible bucket."""
    if settings.storage == "s3":
        return S3Storage(
            settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            prefix=settings.s3_prefix,
            public_base_url=settings.s3_public_base_url,
            url_ttl_seconds=settings.signed_url_ttl_seconds,
        )
    return LocalStorage(settings.storage_dir)
