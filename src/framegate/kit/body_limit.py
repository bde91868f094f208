"""Refuse oversized request bodies with 413 before they are buffered whole."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from framegate.exceptions import PayloadTooLarge
from framegate.kit.dialects import render_for_path

# Per-path limits that replace ``max_bytes``; None leaves the path to the route. Uploads
# stream their body to disk and refuse it past their own (larger) cap as it arrives, so a
# video bigger than any JSON body can come through without ever being held in memory.
STREAMING_ROUTES: Mapping[str, int | None] = {"/v1/uploads": None}


class BodySizeLimitMiddleware:
    """Checks Content-Length up front and counts streamed bytes for chunked bodies, so a
    client cannot make the server hold more than ``max_bytes`` of one request in memory.
    ``overrides`` maps exact paths to their own limit (None: the route enforces one)."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        overrides: Mapping[str, int | None] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.overrides = STREAMING_ROUTES if overrides is None else overrides

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.overrides.get(scope["path"], self.max_bytes)
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, send, limit)
            return
        received = 0
        refused = False

        async def counted() -> Message:
            # Past the limit the client is answered 413 here and the application sees a
            # disconnect, so it stops reading and whatever it answers is dropped.
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    await self._refuse(scope, send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, counted, guarded_send)
        except Exception:
            if not refused:
                raise

    @staticmethod
    def _error(limit: int) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"The request body is larger than {limit} bytes. Send large images as "
            "an https URL or upload them with POST /v1/uploads.",
            code="request_too_large",
        )

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        error = self._error(limit)
        request_id = scope.get("state", {}).get("request_id")
        body = render_for_path(scope, error) or JSONResponse(
            error.body(request_id), status_code=error.status_code
        )
        await body(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
