"""Database engine, sessions and migrations (SQLite file by default, PostgreSQL by URL)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
READ_ONLY_OPTION = "framegate_read_only"
log = logging.getLogger(__name__)

_AFTER_COMMIT = "framegate_after_commit"


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        return _create_sqlite_engine(url)
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _create_sqlite_engine(url: str) -> AsyncEngine:
    engine = create_async_engine(
        url,
        connect_args={"timeout": 30},
        pool_size=8,
        max_overflow=16,
        pool_timeout=60,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy own transaction boundaries so BEGIN IMMEDIATE below takes effect.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A deferred transaction that later writes can fail with SQLITE_BUSY without waiting
        # (its snapshot is stale); taking the write lock up front makes writers queue on
        # busy_timeout instead. Read-only sessions begin deferred and never wait for writers
        # under WAL.
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def create_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for requests that only read (they must not write: SQLite would refuse to
    upgrade their deferred transaction while another connection writes)."""
    return async_sessionmaker(
        engine.execution_options(**{READ_ONLY_OPTION: True}), expire_on_commit=False
    )


@asynccontextmanager
async def transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session that commits when the block succeeds and rolls back when it raises."""
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Call ``callback`` once the session's current transaction commits; a rollback drops
    it. How a service acts on what only committed state may see (waking the workers for a
    queued task, evicting a cached task) without committing itself."""
    _hooks(session)[0].append(callback)


def after_rollback(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Call ``callback`` if the session's current transaction rolls back (a commit drops
    it): how a service undoes what it did outside the database, such as a stored file."""
    _hooks(session)[1].append(callback)


def _hooks(
    session: AsyncSession,
) -> tuple[list[Callable[[], None]], list[Callable[[], None]]]:
    hooks: tuple[list[Callable[[], None]], list[Callable[[], None]]] | None = session.info.get(
        _AFTER_COMMIT
    )
    if hooks is None:
        hooks = session.info[_AFTER_COMMIT] = ([], [])
        event.listen(session.sync_session, "after_commit", _run_after_commit)
        event.listen(session.sync_session, "after_rollback", _run_after_rollback)
    return hooks


def _run_after_commit(session: Any) -> None:
    committed, rolled_back = session.info.get(_AFTER_COMMIT, ([], []))
    pending, committed[:], rolled_back[:] = list(committed), [], []
    _run(pending)


def _run_after_rollback(session: Any) -> None:
    committed, rolled_back = session.info.get(_AFTER_COMMIT, ([], []))
    pending, committed[:], rolled_back[:] = list(rolled_back), [], []
    _run(pending)


def _run(callbacks: list[Callable[[], None]]) -> None:
    # The transaction has ended either way: a failing callback must not turn a committed
    # write into an error for the client (who would retry it), nor stop the others.
    for callback in callbacks:
        try:
            callback()
        except Exception:
            log.exception("transaction hook %r failed", callback)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def framegate_objects(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's filter of what it compares with the models: Procrastinate's tables (the
    distributed job queue, created by revision 0006 from its own schema) are not ours."""
    return not (type_ == "table" and (name or "").startswith("procrastinate_"))


def upgrade_database(url: str) -> None:
    """Apply every pending migration (blocking; runs its own event loop)."""
    command.upgrade(alembic_config(url), "head")


async def upgrade_database_async(url: str) -> None:
    # Alembic's env.py drives the async engine with asyncio.run, so it needs its own thread.
    await asyncio.to_thread(upgrade_database, url)
