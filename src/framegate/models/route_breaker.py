from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from framegate.kit.time import utcnow
from framegate.models.base import Base, TimestampMixin


class RouteBreaker(TimestampMixin, Base):
    """A route's circuit breaker shared by every process of a distributed installation
    (catalog/health.py). Times are seconds since the epoch on the clock of the process that
    wrote them; ``version`` grows with every change, so a process applies only newer
    states whatever order it hears of them in."""

    __tablename__ = "route_breakers"

    route_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    opened_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    trial_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, nullable=False)
