"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from framegate.db import framegate_objects
from framegate.models import Base
from framegate.runtime import Runtime


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_name": framegate_objects}
    )
    return list(compare_metadata(context, Base.metadata))


async def test_migrated_database_matches_the_models(runtime: Runtime) -> None:
    async with runtime.db_engine.connect() as connection:
        assert await connection.run_sync(_diff) == []
