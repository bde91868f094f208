"""Distributed dispatch: the workers table, and Procrastinate's job tables (PostgreSQL)

Procrastinate's schema is the one its installed version ships (procrastinate/sql/schema.sql),
applied here so that `framegate migrate` (or any start-up) prepares a database for either
dispatch mode; SQLite databases get the workers table only (distributed mode needs
PostgreSQL). A later Procrastinate release with schema changes comes with its own revision
that applies that release's migration files.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=120), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("routes", sa.JSON(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    op.create_index(op.f("ix_workers_last_seen_at"), "workers", ["last_seen_at"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        from framegate.dispatch.jobs import apply_procrastinate_schema

        apply_procrastinate_schema(bind)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        from framegate.dispatch.jobs import drop_procrastinate_schema

        drop_procrastinate_schema(bind)
    op.drop_index(op.f("ix_workers_last_seen_at"), table_name="workers")
    op.drop_table("workers")
