"""tasks.number, uploads.number: integer aliases for dialects with numeric ids

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("number", sa.BigInteger(), nullable=True))
        batch.create_unique_constraint(batch.f("uq_tasks_number"), ["number"])
    with op.batch_alter_table("uploads") as batch:
        batch.add_column(sa.Column("number", sa.BigInteger(), nullable=True))
        batch.create_unique_constraint(batch.f("uq_uploads_number"), ["number"])


def downgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.drop_constraint(batch.f("uq_uploads_number"), type_="unique")
        batch.drop_column("number")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_constraint(batch.f("uq_tasks_number"), type_="unique")
        batch.drop_column("number")
