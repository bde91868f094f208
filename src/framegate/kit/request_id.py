"""X-Request-Id on every response (a caller's own id is kept when it looks sane)."""

from __future__ import annotations

import itertools
import re
import secrets

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class _RequestIds:
    """Unique per process run and cheap: a random prefix and a counter. Request ids only
    correlate logs and errors; unlike object ids they need not be unguessable, so they do
    not pay for a call to the OS random source on every request."""

    def __init__(self) -> None:
        self._prefix = f"req_{secrets.token_hex(6)}"
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):010x}"


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._ids = _RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        incoming = raw.decode("latin-1")
        request_id = incoming if _SANE.match(incoming) else self._ids.next()
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-Id"] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)
