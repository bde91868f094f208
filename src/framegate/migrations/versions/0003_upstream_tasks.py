"""upstream vendor tasks: routing state, served route, poll index

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 06:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("upstream", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("served_by", sa.String(length=120), nullable=True))
    op.create_index("ix_tasks_status_lease", "tasks", ["status", "lease_expires_at"])


def downgrade() -> None:
    op.drop_index("ix_tasks_status_lease", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("served_by")
        batch.drop_column("upstream")
