"""The PixelAPI dialect: ``POST /v1/video/generate`` and ``GET /v1/video/{id}``.

Client code written for PixelAPI works by changing the base URL and the key. Requests are
translated onto the one task service (a multipart image becomes an upload whose id is the
task's input_image) and tasks are rendered in PixelAPI's generation shape; nothing here
keeps state. A generation id is a UUID that carries the task's integer alias, so it maps
back to the task without a table of its own; the native ``task_…`` id is accepted too.
"""

from __future__ import annotations

from framegate.compat.pixelapi.endpoints import router
from framegate.compat.pixelapi.errors import render_error
from framegate.compat.pixelapi.schemas import PixelError
from framegate.kit.dialects import Dialect

DIALECT = Dialect(
    name="pixelapi",
    prefixes=("/v1/video/",),
    render_error=render_error,
    error_model=PixelError,
)

__all__ = ["DIALECT", "router"]
