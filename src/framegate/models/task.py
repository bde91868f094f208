from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from framegate.models.base import Base, TimestampMixin


class TaskStatus(StrEnum):
    queued = "queued"
    processing = "processing"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"

    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({TaskStatus.completed, TaskStatus.failed, TaskStatus.cancelled})


class TaskType(StrEnum):
    video_generation = "video.generation"
    image_generation = "image.generation"


class Task(TimestampMixin, Base):
    __tablename__ = "tasks"
    __table_args__ = (
        # Ids begin with their creation time: lists page and sort by id.
        Index("ix_tasks_account_id_id", "account_id", "id"),
        Index("ix_tasks_status_id", "status", "id"),
        Index("ix_tasks_expires_at", "purged_at", "expires_at"),
        Index("ix_tasks_status_deadline", "status", "deadline_at"),
        # Unfinished tasks per account (concurrency limit) and per key (spend cap).
        Index("ix_tasks_account_status", "account_id", "status"),
        Index("ix_tasks_api_key_status", "api_key_id", "status"),
        # Parked upstream tasks due for their next poll.
        Index("ix_tasks_status_lease", "status", "lease_expires_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # A random integer alias (below 2**53, exact in JavaScript) for dialects whose ids are
    # numbers (PixVerse's video_id).
    number: Mapped[int | None] = mapped_column(BigInteger, nullable=True, unique=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    )
    api_key_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    type: Mapped[str] = mapped_column(String(40), nullable=False)
    model: Mapped[str] = mapped_column(String(120), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=TaskStatus.queued)
    progress: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    task_metadata: Mapped[dict[str, str]] = mapped_column(
        "metadata", JSON, nullable=False, default=dict
    )
    webhook_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    estimated_seconds: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    processing_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    credits_reserved: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    credits_used: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    credits_refunded: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(60), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Upstream vendor tasks: the vendor's job id, and the routing state (the route serving
    # the task, what the poller needs, routes tried). A processing task with an upstream
    # job and no worker is parked: lease_expires_at is then when it is next polled.
    engine_task_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    upstream: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The route that produced the outputs (differs from `model` after a fallback).
    served_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    # Past this, a task still queued or processing is failed with `timeout` and refunded.
    deadline_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # When the outputs are deleted by the retention sweeper; purged_at records it was done.
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    purged_at: Mapped[datetime | None] = mapped_column(nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(nullable=True)
