"""Refuse oversized request bodies with 413 before they are buffered whole."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from framegate.exceptions import PayloadTooLarge


class BodySizeLimitMiddleware:
    """Checks Content-Length up front and counts streamed bytes for chunked bodies, so a
    client cannot make the server hold more than ``max_bytes`` of one request in memory."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
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
                if received > self.max_bytes:
                    refused = True
                    await self._refuse(scope, send)
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

    def _error(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"The request body is larger than {self.max_bytes} bytes. Send large images as "
            "an https URL instead of a data URI.",
            code="request_too_large",
        )

    async def _refuse(self, scope: Scope, send: Send) -> None:
        error = self._error()
        request_id = scope.get("state", {}).get("request_id")
        body = JSONResponse(error.body(request_id), status_code=error.status_code)
        await body(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
