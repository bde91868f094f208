"""Typed response objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, PrivateAttr

__all__ = [
    "APIKey",
    "APIKeyList",
    "CreditBalance",
    "Estimate",
    "ImagesResponse",
    "LedgerEntry",
    "LedgerPage",
    "Model",
    "ModelList",
    "Task",
    "TaskList",
    "Upload",
]

TaskStatus = Literal["queued", "processing", "completed", "failed", "cancelled"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


class FramegateObject(BaseModel):
    """Base of every response object; unknown fields are kept."""

    model_config = ConfigDict(extra="allow")


class TaskOutput(FramegateObject):
    """One output file of a task (the video, or an image)."""

    url: str
    content_type: str | None = None
    width: int | None = None
    height: int | None = None
    thumbnail_url: str | None = None
    duration: float | None = None
    fps: int | None = None
    num_frames: int | None = None


class TaskResult(FramegateObject):
    """The outputs of a completed task."""

    data: list[TaskOutput]


class TaskError(FramegateObject):
    """Why a task failed."""

    code: str
    message: str


class Task(FramegateObject):
    """An asynchronous generation task."""

    id: str
    object: str = "task"
    type: str
    status: TaskStatus
    model: str
    progress: int = 0
    created_at: int
    started_at: int | None = None
    completed_at: int | None = None
    expires_at: int | None = None
    estimated_seconds: int | None = None
    processing_ms: int | None = None
    credits_reserved: int = 0
    credits_used: int = 0
    credits_refunded: int = 0
    attempts: int = 0
    input: dict[str, Any] = {}
    metadata: dict[str, str] = {}
    result: TaskResult | None = None
    error: TaskError | None = None

    _client: Any = PrivateAttr(default=None)

    def is_terminal(self) -> bool:
        """True when the task is completed, failed or cancelled."""
        return self.status in TERMINAL_STATUSES

    def _first_output_url(self) -> str:
        if self.status != "completed" or self.result is None or not self.result.data:
            raise ValueError(f"task {self.id} has no output (status: {self.status})")
        return self.result.data[0].url

    def save(self, path: str | Path) -> Path:
        """Stream the first output (the MP4 of a video task) to ``path``; return the path."""
        if self._client is None:
            raise RuntimeError("this task is not attached to a client")
        if not hasattr(self._client, "_download"):
            raise TypeError("task comes from AsyncFramegate: use `await task.asave(path)`")
        result: Path = self._client._download(self._first_output_url(), Path(path))
        return result

    async def asave(self, path: str | Path) -> Path:
        """Async version of :meth:`save`, for tasks returned by ``AsyncFramegate``."""
        if self._client is None or not hasattr(self._client, "_adownload"):
            raise TypeError("task does not come from AsyncFramegate: use `task.save(path)`")
        result: Path = await self._client._adownload(self._first_output_url(), Path(path))
        return result


class TaskList(FramegateObject):
    """A page of tasks, newest first."""

    object: str = "list"
    data: list[Task]
    has_more: bool = False
    next_cursor: str | None = None


class ImageData(FramegateObject):
    """One generated image."""

    url: str
    width: int | None = None
    height: int | None = None
    thumbnail_url: str | None = None


class ImagesResponse(FramegateObject):
    """The images of a synchronous image generation."""

    created: int
    data: list[ImageData]
    task_id: str
    model: str
    credits_used: int = 0


class Pricing(FramegateObject):
    """How a model is priced."""

    unit: str
    credits: dict[str, int]


class Model(FramegateObject):
    """A model (route) of the catalog."""

    id: str
    object: str = "model"
    name: str = ""
    description: str = ""
    kind: str
    aliases: list[str] = []
    engine: str | None = None
    available: bool = True
    capabilities: dict[str, Any] = {}
    pricing: Pricing | None = None


class ModelList(FramegateObject):
    """The catalog."""

    object: str = "list"
    data: list[Model]


class Estimate(FramegateObject):
    """What a request would cost."""

    object: str = "estimate"
    model: str
    kind: str
    credits: int
    estimated_seconds: int
    width: int
    height: int
    resolution_tier: str
    duration: int | None = None
    fps: int | None = None
    num_frames: int | None = None
    n: int | None = None
    pricing: Pricing | None = None


class CreditBalance(FramegateObject):
    """The account's credits."""

    object: str = "credit_balance"
    account_id: str
    available: int
    held: int


class LedgerEntry(FramegateObject):
    """One credit movement."""

    id: str
    object: str = "ledger_entry"
    kind: str
    amount: int
    credits: int
    balance_after: int
    task_id: str | None = None
    description: str = ""
    created_at: int


class LedgerPage(FramegateObject):
    """A page of the credit ledger."""

    object: str = "list"
    data: list[LedgerEntry]
    has_more: bool = False
    next_cursor: str | None = None


class Upload(FramegateObject):
    """An uploaded file; its id works as ``input_image``."""

    id: str
    object: str = "upload"
    kind: str
    content_type: str | None = None
    bytes: int | None = None
    width: int | None = None
    height: int | None = None
    filename: str | None = None
    created_at: int
    expires_at: int | None = None
    url: str | None = None


class APIKey(FramegateObject):
    """An API key; ``secret`` is set only when it was just created or rotated."""

    id: str
    object: str = "api_key"
    name: str = ""
    display: str = ""
    scopes: list[str] = []
    spend_cap: int | None = None
    created_at: int
    last_used_at: int | None = None
    revoked_at: int | None = None
    secret: str | None = None


class APIKeyList(FramegateObject):
    """The account's API keys."""

    object: str = "list"
    data: list[APIKey]
