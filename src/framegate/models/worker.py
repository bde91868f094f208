from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from framegate.models.base import Base, TimestampMixin


class Worker(TimestampMixin, Base):
    """A `framegate worker` process (distributed mode): the routes it serves and when it
    last said it was alive. A route is available while some live worker serves it."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255), nullable=False)
    routes: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    concurrency: Mapped[int] = mapped_column(Integer, nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(nullable=False, index=True)
