"""One guard in front of every route: text that cannot be stored, and JSON that cannot be
parsed safely, are refused before any route, service or database sees them.

- The URL path, query parameters and the headers framegate stores (idempotency keys, event
  ids) must be UTF-8 without NUL bytes: PostgreSQL cannot store a NUL in text, SQLite can,
  so without this the two databases would answer the same request differently.
- JSON bodies are parsed once here with a depth bound: deep nesting, invalid UTF-8 and
  malformed JSON get 400 ``invalid_json``; strings holding NUL or unpaired surrogates get
  422 naming the field. Errors come in the envelope of the route family hit.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from framegate.exceptions import BadRequest, FramegateError, InvalidValue
from framegate.kit.responses import send_error

# Headers whose values framegate keeps or echoes: visible ASCII only.
_STORED_HEADERS = {
    b"idempotency-key": "Idempotency-Key",
    b"ai-trace-id": "Ai-trace-id",
    b"last-event-id": "Last-Event-ID",
}
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Unstorable in a text column: NUL, and lone surrogates (which no UTF-8 encoder accepts).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_MAX_PARAM_NAME = 64


class RequestGuardMiddleware:
    def __init__(self, app: ASGIApp, *, max_json_depth: int) -> None:
        self.app = app
        self.max_json_depth = max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            _check_path(scope)
            _check_pairs(scope.get("query_string", b""), where="query parameter")
            _check_headers(scope)
            if scope["method"] in _BODY_METHODS:
                kind = _body_kind(scope)
                if kind is not None:
                    body = await _read_body(receive)
                    if body is None:
                        return  # the client went away (or the size limit answered it)
                    if kind == "json":
                        check_json(body, max_depth=self.max_json_depth)
                    else:
                        _check_pairs(body, where="form field")
                    receive = _replay(body, receive)
        except FramegateError as error:
            await send_error(scope, send, error)
            return
        await self.app(scope, receive, send)


def _unstorable(param: str, where: str) -> InvalidValue:
    what = "The URL path" if param == "path" else f"The {where} {param!r}"
    return InvalidValue(
        f"{what} contains a NUL character or text that is not valid UTF-8. "
        "Send plain UTF-8 text without control character U+0000.",
        param=param,
        code="invalid_text",
    )


def check_text(value: str, *, param: str, where: str = "field") -> str:
    """``value`` when a database can store it; 422 naming ``param`` when it holds NUL or an
    unpaired surrogate (for text that arrives outside JSON, such as multipart fields)."""
    if _UNSTORABLE.search(value):
        raise _unstorable(param, where)
    return value


def _check_path(scope: Scope) -> None:
    raw = scope.get("raw_path")
    if raw:
        # Some servers put the query in raw_path too.
        path = unquote_to_bytes(raw.split(b"?", 1)[0])
        if b"\x00" not in path and _is_utf8(path):
            return
    elif not _UNSTORABLE.search(scope["path"]):
        return
    raise _unstorable("path", "URL")


def _check_pairs(encoded: bytes, *, where: str) -> None:
    """Query strings and url-encoded forms: every name and value UTF-8 without NUL."""
    if not encoded:
        return
    for pair in encoded.split(b"&"):
        raw_name, _, raw_value = pair.partition(b"=")
        name = unquote_to_bytes(raw_name.replace(b"+", b" "))
        value = unquote_to_bytes(raw_value.replace(b"+", b" "))
        if b"\x00" in name or not _is_utf8(name):
            raise _unstorable("(name)", where)
        if b"\x00" in value or not _is_utf8(value):
            raise _unstorable(name.decode()[:_MAX_PARAM_NAME], where)


def _check_headers(scope: Scope) -> None:
    for name, value in scope["headers"]:
        label = _STORED_HEADERS.get(name)
        if label is not None and not all(0x20 <= byte < 0x7F for byte in value):
            raise InvalidValue(
                f"The {label} header must be visible ASCII characters.",
                param=label,
                code="invalid_header",
            )


def _body_kind(scope: Scope) -> str | None:
    """'json' for bodies FastAPI would parse as JSON, 'form' for url-encoded forms."""
    content_type = next((v for k, v in scope["headers"] if k == b"content-type"), None)
    if content_type is None:
        return "json"
    media = content_type.split(b";", 1)[0].strip().lower()
    if media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    ):
        return "json"
    if media == b"application/x-www-form-urlencoded":
        return "form"
    return None


def check_json(body: bytes, *, max_depth: int) -> Any:
    """The parsed body; 400 invalid_json for anything that is not JSON within the depth
    bound, 422 for strings that cannot be stored."""
    if not body.strip():
        return None  # no body: the route says whether it needs one
    try:
        value = json.loads(body)
    except RecursionError:
        raise _too_deep(max_depth) from None
    except ValueError as error:
        where = ""
        if isinstance(error, json.JSONDecodeError):
            where = f" (line {error.lineno}, column {error.colno}: {error.msg})"
        elif isinstance(error, UnicodeDecodeError):
            where = " (the body is not valid UTF-8)"
        raise BadRequest(
            f"The body is not valid JSON{where}. Send a JSON object encoded as UTF-8.",
            code="invalid_json",
        ) from None
    _check_tree(value, max_depth)
    return value


def _too_deep(max_depth: int) -> BadRequest:
    return BadRequest(
        f"The JSON body is nested more than {max_depth} levels deep.", code="invalid_json"
    )


def _check_tree(value: Any, max_depth: int) -> None:
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, str):
            if _UNSTORABLE.search(node):
                raise _unstorable(path or "body", "field")
        elif isinstance(node, dict | list):
            if depth > max_depth:
                raise _too_deep(max_depth)
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, child in items:
                if isinstance(key, str) and _UNSTORABLE.search(key):
                    raise _unstorable(f"{path}.(key)" if path else "(key)", "field")
                name = f"{path}.{key}" if path else str(key)
                stack.append((child, name[:200], depth + 1))


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
