from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from framegate.models.base import Base, TimestampMixin


class ConsoleSession(TimestampMixin, Base):
    """A signed-in browser of the web console. The cookie holds a random token; only its
    SHA-256 is stored. The session acts as the API key it was opened with (``key_hash`` is
    that key's stored hash): it ends with the key (revoked, rotated away, account disabled),
    on sign-out, or at ``expires_at``."""

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    api_key_id: Mapped[str] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), index=True, nullable=False
    )
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    csrf_token: Mapped[str] = mapped_column(String(64), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(nullable=False, index=True)
