"""Idempotency-Key on POST: the first request runs, a repeat gets its stored response.

Same key and same request (method, path, body) → the stored status and body, replayed with
``Idempotent-Replayed: true``; same key, another request → 422 ``idempotency_key_reused``;
same key while the first is still running → 409. Keys are per account and kept for
FRAMEGATE_IDEMPOTENCY_TTL_SECONDS (at least 24 h). Responses that invite a retry (409, 429,
5xx) are not stored: the retry runs for real.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from python_multipart.multipart import parse_options_header
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from framegate.db import transaction
from framegate.exceptions import BadRequest, Conflict, FramegateError, InvalidValue
from framegate.idempotency.repository import idempotency_repository
from framegate.keys.middleware import optional_auth
from framegate.kit.dialects import render_for_path
from framegate.kit.ids import new_id
from framegate.kit.time import as_utc, utcnow
from framegate.models import IdempotencyKey

HEADER = b"idempotency-key"
MAX_KEY_LENGTH = 255
# An in-progress key older than this belongs to a request that died with its process.
_ABANDONED_AFTER = timedelta(seconds=120)
_NOT_STORED = {409, 429}
# Multipart uploads are streamed to storage, never buffered whole here.
SKIPPED_PATHS = ("/v1/uploads",)


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, *, header_aliases: tuple[bytes, ...] = ()) -> None:
        self.app = app
        self.headers = (HEADER, *header_aliases)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = self._key(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        try:
            await self._handle(scope, receive, send, key)
        except FramegateError as error:
            request_id = scope.get("state", {}).get("request_id")
            response = render_for_path(scope, error) or JSONResponse(
                error.body(request_id), status_code=error.status_code, headers=error.headers
            )
            await response(scope, receive, send)

    def _key(self, scope: Scope) -> str | None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        if scope["path"].startswith(SKIPPED_PATHS):
            return None
        for name, value in scope["headers"]:
            if name in self.headers:
                return value.decode("latin-1").strip()
        return None

    async def _handle(self, scope: Scope, receive: Receive, send: Send, key: str) -> None:
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise BadRequest(
                f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable characters.",
                param="Idempotency-Key",
                code="invalid_idempotency_key",
            )
        runtime = scope["app"].state.runtime
        auth = optional_auth(scope)
        if auth is None:
            # Unauthenticated requests store nothing; the route answers 401 itself.
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        fingerprint = _fingerprint(scope, body)
        row_id = await self._claim(runtime, auth.account.id, key, fingerprint, scope, send)
        if row_id is None:
            return
        await self._run(runtime, scope, body, send, row_id)

    async def _claim(
        self, runtime: Any, account_id: str, key: str, fingerprint: str, scope: Scope, send: Send
    ) -> str | None:
        """The new row's id when this request is the first; otherwise answers the request
        (replay, 409 or 422) and returns None."""
        now = utcnow()
        row = IdempotencyKey(
            id=new_id("idem"),
            account_id=account_id,
            key=key,
            fingerprint=fingerprint,
            status="in_progress",
            created_at=now,
            expires_at=now + timedelta(seconds=runtime.settings.idempotency_ttl_seconds),
        )
        async with transaction(runtime.sessionmaker) as session:
            if await idempotency_repository.claim(session, row):
                return row.id
            existing = await idempotency_repository.get(session, account_id, key)
            if existing is not None and _is_stale(existing, now):
                await idempotency_repository.delete(session, existing.id)
                await session.flush()
                if await idempotency_repository.claim(session, row):
                    return row.id
                existing = None
        if existing is None:  # deleted between the two statements: let the client retry
            raise _in_progress()
        if existing.fingerprint != fingerprint:
            raise InvalidValue(
                "This Idempotency-Key was already used with a different request. Use a new "
                "key for a new request.",
                param="Idempotency-Key",
                code="idempotency_key_reused",
            )
        if existing.status != "completed":
            raise _in_progress()
        await _replay(existing, scope, send)
        return None

    async def _run(self, runtime: Any, scope: Scope, body: bytes, send: Send, row_id: str) -> None:
        status = 500
        content_type = "application/json"
        chunks: list[bytes] = []
        finished = False

        async def finish() -> None:
            nonlocal finished
            finished = True
            async with transaction(runtime.sessionmaker) as session:
                if status >= 500 or status in _NOT_STORED:
                    await idempotency_repository.delete(session, row_id)
                else:
                    await idempotency_repository.complete(
                        session,
                        row_id,
                        status=status,
                        headers={"content-type": content_type},
                        body=b"".join(chunks),
                    )

        async def capture(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name == b"content-type":
                        content_type = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    # Stored before the client sees the end of the response, so a retry
                    # right after it is a replay, never a 409 "still in progress".
                    await finish()
            await send(message)

        try:
            await self.app(scope, _replaying(body), capture)
        finally:
            if not finished:
                await finish()


def _is_stale(row: IdempotencyKey, now: Any) -> bool:
    if as_utc(row.expires_at) <= now:
        return True
    return row.status != "completed" and as_utc(row.created_at) + _ABANDONED_AFTER <= now


def _in_progress() -> Conflict:
    return Conflict(
        "A request with this Idempotency-Key is still being processed. Retry shortly to "
        "get its response.",
        param="Idempotency-Key",
        code="idempotency_request_in_progress",
        headers={"Retry-After": "1"},
    )


async def _replay(row: IdempotencyKey, scope: Scope, send: Send) -> None:
    headers = dict(row.response_headers or {})
    headers["Idempotent-Replayed"] = "true"
    response = Response(
        content=row.response_body or b"",
        status_code=row.response_status or 200,
        headers=headers,
    )
    await response(scope, _replaying(b""), send)


def _fingerprint(scope: Scope, body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(f"{scope['method']} {scope['path']}?".encode())
    digest.update(scope.get("query_string", b""))
    digest.update(b"\n")
    digest.update(_without_boundary(scope, body))
    return digest.hexdigest()


def _without_boundary(scope: Scope, body: bytes) -> bytes:
    """A multipart body with its boundary replaced: clients pick a new boundary for every
    request, so a retry of the same form would otherwise look like a different request."""
    content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
    if not content_type.lower().startswith(b"multipart/"):
        return body
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    return body.replace(boundary, b"boundary") if boundary else body


async def _read_body(receive: Receive) -> bytes:
    # The body-size middleware outside this one bounds how much can arrive here.
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes) -> Callable[[], Awaitable[Message]]:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
