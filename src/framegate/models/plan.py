from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from framegate.models.base import Base, TimestampMixin


class Plan(TimestampMixin, Base):
    """Limits per tier. Accounts name their plan; an unknown name gets the defaults."""

    __tablename__ = "plans"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    # Queued + processing tasks an account may have at once, by kind.
    max_concurrent_videos: Mapped[int] = mapped_column(Integer, nullable=False)
    max_concurrent_images: Mapped[int] = mapped_column(Integer, nullable=False)
    # Requests per minute per API key.
    requests_per_minute: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_at: Mapped[datetime | None] = mapped_column(nullable=True)
