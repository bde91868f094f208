"""Runtime: the long-lived objects one framegate process builds from its Settings.

The API (through the app's lifespan), the CLI and the tests build it the same way, so
there is one place where engines, database, storage, catalog and services are wired.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from framegate.accounts.service import AccountService
from framegate.catalog.service import Catalog, load_routes
from framegate.config import Settings
from framegate.db import (
    create_engine,
    create_read_sessionmaker,
    create_sessionmaker,
    upgrade_database_async,
)
from framegate.dispatch.embedded import EmbeddedDispatcher
from framegate.dispatch.worker import TaskRunner
from framegate.engines.registry import EngineRegistry, default_engines
from framegate.keys.service import APIKeyService
from framegate.storage.base import Storage
from framegate.storage.local import LocalStorage
from framegate.storage.signing import URLSigner
from framegate.tasks.lifecycle import TaskLifecycle
from framegate.tasks.service import TaskService
from framegate.tasks.signals import TaskSignals


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
    keys: APIKeyService
    accounts: AccountService
    tasks: TaskService
    signals: TaskSignals
    lifecycle: TaskLifecycle
    dispatcher: EmbeddedDispatcher | None = field(default=None)

    @classmethod
    async def create(
        cls, settings: Settings, *, engines: EngineRegistry | None = None, migrate: bool = True
    ) -> Runtime:
        settings.ensure_data_dir()
        if migrate:
            await upgrade_database_async(settings.resolved_database_url)
        db_engine = create_engine(settings.resolved_database_url)
        sessionmaker = create_sessionmaker(db_engine)
        read_sessionmaker = create_read_sessionmaker(db_engine)
        engines = engines or default_engines()
        catalog = Catalog(load_routes(settings.catalog_file), engines)
        storage = LocalStorage(settings.storage_dir)
        secret = settings.effective_secret_key
        signer = URLSigner(secret, settings.signed_url_ttl_seconds)
        keys = APIKeyService(
            secret,
            sessionmaker=sessionmaker,
            read_sessionmaker=read_sessionmaker,
            cache_seconds=settings.read_cache_seconds,
        )
        signals = TaskSignals()
        lifecycle = TaskLifecycle(
            sessionmaker,
            signals,
            read_sessionmaker=read_sessionmaker,
            lease_seconds=settings.task_lease_seconds,
            max_attempts=settings.task_max_attempts,
        )
        tasks = TaskService(
            catalog=catalog,
            storage=storage,
            signer=signer,
            fetch_policy=settings.fetch_policy,
            max_image_pixels=settings.input_image_max_pixels,
            read_sessionmaker=read_sessionmaker,
            signals=signals,
            cache_seconds=settings.read_cache_seconds,
            signed_url_ttl_seconds=settings.signed_url_ttl_seconds,
        )
        signals.on_change(tasks.forget)
        return cls(
            settings=settings,
            db_engine=db_engine,
            sessionmaker=sessionmaker,
            read_sessionmaker=read_sessionmaker,
            engines=engines,
            catalog=catalog,
            storage=storage,
            signer=signer,
            keys=keys,
            accounts=AccountService(keys),
            tasks=tasks,
            signals=signals,
            lifecycle=lifecycle,
        )

    async def start_workers(self) -> None:
        if self.settings.worker_concurrency == 0 or self.dispatcher is not None:
            return
        runner = TaskRunner(
            catalog=self.catalog,
            engines=self.engines,
            storage=self.storage,
            lifecycle=self.lifecycle,
            scratch_dir=self.settings.data_dir / "tmp",
            max_image_pixels=self.settings.input_image_max_pixels,
        )
        self.dispatcher = EmbeddedDispatcher(
            runner=runner,
            lifecycle=self.lifecycle,
            signals=self.signals,
            concurrency=self.settings.worker_concurrency,
            poll_seconds=self.settings.worker_poll_seconds,
            reaper_interval_seconds=self.settings.reaper_interval_seconds,
        )
        await self.dispatcher.start()

    async def close(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.stop()
            self.dispatcher = None
        await self.db_engine.dispose()
