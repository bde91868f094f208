"""The PixVerse Platform API dialect (``/openapi/v2/...``).

Client code written for PixVerse works against framegate by changing the base URL and the
key: the key travels in ``API-KEY``, ``Ai-trace-id`` is the idempotency key (an alias the
idempotency middleware reads), every answer is ``{"ErrCode", "ErrMsg", "Resp"}`` and, as on
PixVerse, a refused request is answered HTTP 200 with its ErrCode, except for the errors
a client must handle at the HTTP level (401 invalid key, 403 missing scope, 405 a method
the path does not have, 429 limits with Retry-After, 5xx), which keep their status.

A thin translation onto the task and upload services: PixVerse's integer ids are the
integer aliases framegate gives every task (``video_id`` = ``task.number``) and upload
(``img_id`` = ``upload.number``); nothing is stored here. ``quality`` + ``aspect_ratio``
become the output size PixVerse renders for them (image-to-video takes the aspect ratio
closest to the uploaded image's, as PixVerse follows the image), and ``model`` names a
catalog route or alias (``v5`` falls back to the built-in ``pixverse-v5`` route).
"""

from __future__ import annotations

from framegate.compat.pixverse.endpoints import router
from framegate.compat.pixverse.errors import render_error
from framegate.compat.pixverse.schemas import IDEMPOTENCY_HEADER, PREFIX, PixVerseErrorEnvelope
from framegate.kit.dialects import Dialect

DIALECT = Dialect(
    name="pixverse",
    prefixes=(f"{PREFIX}/",),
    render_error=render_error,
    error_model=PixVerseErrorEnvelope,
    idempotency_header=IDEMPOTENCY_HEADER,
)

__all__ = ["DIALECT", "router"]
