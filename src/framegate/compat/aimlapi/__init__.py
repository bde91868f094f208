"""AI/ML API (aimlapi.com) video generation dialect.

Client code written for AI/ML API works against framegate by changing the base URL and the
key: ``POST /v2/generate/video/{vendor}/generation`` queues a generation and answers its id;
``GET /v2/generate/video/{vendor}/generation?generation_id=…`` answers its status and, once
completed, ``video.url``. AI/ML's vendor-less universal URL (``/v2/video/generations``)
routes to the same handlers. The generation id is the framegate task id, so the task is the
same one ``GET /v1/tasks/{id}`` shows. Errors come back in AI/ML's envelope
``{"statusCode", "message", "path", "requestId", "timestamp"}`` (plus framegate's ``code``
and ``param``), with AI/ML's statuses: invalid bodies are 400, missing credits are 403.
"""

from __future__ import annotations

from framegate.compat.aimlapi.endpoints import router
from framegate.compat.aimlapi.errors import render_error
from framegate.compat.aimlapi.schemas import AimlErrorBody
from framegate.kit.dialects import Dialect

DIALECT = Dialect(
    name="aimlapi",
    prefixes=("/v2/generate/video/", "/v2/video/generations"),
    render_error=render_error,
    error_model=AimlErrorBody,
)

__all__ = ["DIALECT", "router"]
